"""The Docker lab's compose submission: the guard that checks a student's file, its page, API and job."""
