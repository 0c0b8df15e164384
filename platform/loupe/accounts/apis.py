"""REST views for the signed-in user, API tokens, users and project members."""

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.accounts.lockout import login_check
from loupe.accounts.models import Role
from loupe.accounts.selectors import user_account_role, user_list
from loupe.accounts.services import (
    USER_ADMIN_ROLES,
    membership_remove,
    user_register,
    user_token,
)
from loupe.api.pagination import paginated, paginated_response
from loupe.api.permissions import require
from loupe.api.schema import ERROR
from loupe.errors import ApplicationError, NotFoundError, PermissionDeniedError
from loupe.labeling.people import label_studio_login
from loupe.projects.selectors import project_get


class TokenObtainApi(APIView):
    """Exchanges a username and password for the user's API token. After repeated failures
    the username is locked out from that address for a while (429 with Retry-After)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, 401: ERROR, 429: ERROR}
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login_check(request=request, username=serializer.validated_data["username"])
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise ApplicationError(
                "Wrong username or password.", code="bad_credentials", status=401
            )
        return Response({"token": user_token(user=user)})


class LabelStudioLoginSerializer(serializers.Serializer):
    url = serializers.CharField()
    email = serializers.CharField()
    password = serializers.CharField(allow_null=True)
    ls_user_id = serializers.IntegerField()


class MeApi(APIView):
    """The signed-in user, with how they sign in to Label Studio once Loupe made their
    Label Studio user (`password` is null when they had one already)."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.CharField(allow_null=True)
        label_studio = LabelStudioLoginSerializer(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        me = {
            "username": request.user.username,
            "role": user_account_role(user=request.user),
            "label_studio": label_studio_login(user=request.user),
        }
        return Response(self.OutputSerializer(me).data)


class UserListCreateApi(APIView):
    """Users of this Loupe, for admins: list them, create one (account-wide role)."""

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        password = serializers.CharField(
            required=False, allow_blank=True, default="", write_only=True, max_length=128
        )
        role = serializers.ChoiceField(choices=Role.choices, default=Role.EXPERT)

        def validate(self, attrs):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown field." for name in unknown})
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.CharField()
        role = serializers.CharField(source="account_role", allow_null=True)
        is_active = serializers.BooleanField()
        date_joined = serializers.DateTimeField()

    class CreatedSerializer(OutputSerializer):
        role = serializers.CharField()
        password = serializers.CharField(
            allow_null=True,
            help_text="The generated password, shown this once; null when one was given.",
        )

    @extend_schema(responses={200: paginated(OutputSerializer), 403: ERROR})
    def get(self, request):
        if user_account_role(user=request.user) not in USER_ADMIN_ROLES:
            raise PermissionDeniedError("Only admins may list users.")
        return paginated_response(
            view=self, request=request, queryset=user_list(), serializer=self.OutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        registration = user_register(
            by=request.user,
            username=data["username"],
            email=data["email"],
            password=data["password"] or None,
            role=data["role"],
        )
        user = registration.user
        body = {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "role": data["role"],
            "is_active": user.is_active,
            "date_joined": user.date_joined,
            "password": registration.generated_password,
        }
        return Response(self.CreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class ProjectMemberDeleteApi(APIView):
    """Removes a member from a project (project admins only)."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str, username: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="manage_members")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise NotFoundError(f"No user '{username}'.")
        membership_remove(project=project, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
