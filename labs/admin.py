from django.contrib import admin

from .models import AllocatedPort, Attempt, Course, Enrolment, Environment, Exercise


class EnrolmentInline(admin.TabularInline):
    model = Enrolment
    extra = 0
    raw_id_fields = ["student"]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "code", "created_at"]
    search_fields = ["title", "slug", "code"]
    filter_horizontal = ["teachers", "clusters"]
    inlines = [EnrolmentInline]


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "course", "target", "ttl", "position"]
    list_filter = ["target", "course"]
    search_fields = ["title", "slug"]


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ["student", "course", "created_at"]
    list_filter = ["course"]
    raw_id_fields = ["student"]


class AllocatedPortInline(admin.TabularInline):
    model = AllocatedPort
    extra = 0
    readonly_fields = ["cluster", "name", "port"]


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    """The access dict stays encrypted and out of the admin; teardown goes through lab-destroy jobs."""

    list_display = ["id", "exercise", "owner", "state", "cluster", "score", "expires_at"]
    list_filter = ["state", "exercise__course"]
    search_fields = ["owner__username"]
    exclude = ["access_encrypted"]
    readonly_fields = ["exercise", "owner", "cluster", "state", "error", "created_at", "ready_at", "destroyed_at", "score", "last_checked_at"]
    inlines = [AllocatedPortInline]

    def has_add_permission(self, request):
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "environment", "requested_by", "score", "max_score", "created_at"]
    readonly_fields = [field.name for field in Attempt._meta.fields]

    def has_add_permission(self, request):
        return False
