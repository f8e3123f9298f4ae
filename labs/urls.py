from django.urls import path, re_path

from . import views

app_name = "labs"

urlpatterns = [
    path("", views.course_list, name="course_list"),
    path("enrol/", views.enrol, name="enrol"),
    path("courses/new/", views.course_create, name="course_create"),
    path("courses/<int:pk>/", views.course_detail, name="course_detail"),
    path("courses/<int:pk>/edit/", views.course_edit, name="course_edit"),
    path("courses/<int:pk>/enrol/", views.course_enrol, name="course_enrol"),
    path("courses/<int:pk>/grades.csv", views.course_grades, name="course_grades"),
    path("courses/<int:pk>/import/", views.exercise_import, name="exercise_import"),
    re_path(r"^courses/(?P<pk>[0-9]+)/all/(?P<action>extend|expire)/$", views.course_bulk_action, name="course_bulk_action"),
    path("exercises/<int:pk>/", views.exercise_detail, name="exercise_detail"),
    path("exercises/<int:pk>/launch/", views.exercise_launch, name="exercise_launch"),
    path("exercises/<int:pk>/class-start/", views.class_start, name="class_start"),
    path("exercises/<int:pk>/export/", views.exercise_export, name="exercise_export"),
    path("environments/<int:pk>/", views.environment_detail, name="environment_detail"),
    path("environments/<int:pk>/kubeconfig/", views.environment_kubeconfig, name="environment_kubeconfig"),
    path("environments/<int:pk>/terminals/", views.environment_watch_terminals, name="environment_watch_terminals"),
    path("environments/<int:pk>/load-test/", views.environment_load_test, name="environment_load_test"),
    re_path(r"^environments/(?P<pk>[0-9]+)/(?P<action>check|reset|destroy|extend|expire)/$", views.environment_action, name="environment_action"),
    path("attempts/<int:pk>/", views.attempt_detail, name="attempt_detail"),
]

# Docker lab: submit a compose file to one's environment (labs/compose/views.py).
from labs.compose.urls import urlpatterns as compose_urlpatterns  # noqa: E402

# First, so that environments/<pk>/compose/ is not taken for an environment action.
urlpatterns = compose_urlpatterns + urlpatterns
