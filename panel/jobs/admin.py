from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "user", "target_repr", "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["target_repr", "error"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request):
        return False
