from django.conf import settings
from django.http import JsonResponse
from django.template.response import TemplateResponse


class RequestSizeLimitMiddleware:
    """Answer 413 for a declared body over the limit, before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BYTES:
            return too_large_response(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.core.exceptions import RequestDataTooBig

        if isinstance(exception, RequestDataTooBig):
            return too_large_response(request)
        return None


def too_large_response(request):
    limit_mb = settings.MAX_REQUEST_BYTES / (1024 * 1024)
    message = f"The request body is larger than the {limit_mb:g} MB this panel accepts."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    response = TemplateResponse(request, "errors/413.html", {"message": message}, status=413)
    return response.render()
