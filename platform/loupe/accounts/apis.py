"""REST views for the signed-in user and API tokens."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.accounts.selectors import user_account_role
from loupe.accounts.services import user_token
from loupe.errors import ApplicationError


class TokenObtainApi(APIView):
    """Exchanges a username and password for the user's API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise ApplicationError(
                "Wrong username or password.", code="bad_credentials", status=401
            )
        return Response({"token": user_token(user=user)})


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.CharField(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        role = user_account_role(user=request.user)
        return Response({"username": request.user.username, "role": role})
