from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from .access import get_visible_or_404
from .models import ApiToken
from .serializers import ApiTokenSerializer, MeSerializer


class Me(APIView):
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    serializer_class = MeSerializer


class TokenListCreate(generics.ListCreateAPIView):
    """Your API tokens. The token value is returned once, in the response that creates it."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return ApiToken.objects.visible_to(self.request.user)


class TokenRevoke(generics.DestroyAPIView):
    """Revoke one of your tokens (it stays listed, marked revoked)."""

    serializer_class = ApiTokenSerializer

    def get_object(self):
        return get_visible_or_404(ApiToken, self.request.user, pk=self.kwargs["pk"])

    def perform_destroy(self, instance):
        instance.revoke()
