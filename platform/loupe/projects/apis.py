"""REST views for projects, their classes and members. Views validate, call a service or a
selector, and serialize; the rules live in services and selectors."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.accounts.models import Membership, Role
from loupe.accounts.selectors import user_can_create_projects, user_project_role
from loupe.accounts.services import membership_set
from loupe.api.pagination import paginated, paginated_response
from loupe.api.permissions import require
from loupe.api.serializers import StrictSerializer
from loupe.errors import NotFoundError, PermissionDeniedError
from loupe.insights.loops import loop_status
from loupe.projects.models import ClassWeighting, LossName, TaskType
from loupe.projects.selectors import project_classes, project_get, project_list
from loupe.projects.services import label_classes_set, project_create, project_update


class LabelClassSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    target_count = serializers.IntegerField(
        min_value=0, max_value=10**9, required=False, allow_null=True
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    task_type = serializers.CharField()
    description = serializers.CharField()
    guidelines = serializers.CharField()
    classes = serializers.SerializerMethodField()
    settings = serializers.SerializerMethodField()
    your_role = serializers.SerializerMethodField()
    loop_status = serializers.SerializerMethodField(
        help_text="what the learning loop is doing or waiting for, in words and numbers"
    )
    created_at = serializers.DateTimeField()

    def get_classes(self, project) -> list[dict]:
        return LabelClassSerializer(project_classes(project=project), many=True).data

    def get_settings(self, project) -> dict:
        return {name: getattr(project, name) for name in SETTINGS}

    def get_loop_status(self, project) -> dict:
        return loop_status(project=project)

    def get_your_role(self, project) -> str | None:
        return user_project_role(user=self.context["request"].user, project=project)


class ProjectSettingsSerializer(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    guidelines = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    strategy = serializers.CharField(required=False, max_length=40)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=10000)
    control_fraction = serializers.FloatField(required=False, min_value=0.0, max_value=0.99)
    retrain_every_n_labels = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    retrain_every_minutes = serializers.IntegerField(
        required=False, min_value=0, max_value=60 * 24 * 365
    )
    train_epochs = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    class_weighting = serializers.ChoiceField(choices=ClassWeighting.choices, required=False)
    loss = serializers.ChoiceField(choices=LossName.choices, required=False)
    image_size = serializers.IntegerField(required=False, min_value=16, max_value=1024)
    annotator_overlap = serializers.IntegerField(required=False, min_value=1, max_value=20)
    holdout_fraction = serializers.FloatField(required=False, min_value=0.0, max_value=0.5)
    augmentations = serializers.DictField(
        required=False,
        help_text="changes to the training augmentations' defaults: image classification"
        " (none by default; turn on hflip, vflip, quarter_turns, rotate_degrees,"
        ' shift_fraction, brightness, contrast), e.g. {"hflip": 0.5, "shift_fraction": 0.05};'
        ' object detection (domain defaults), e.g. {"hflip": 0.5} or {"blur": 0, "light": 0}',
    )


# Every active-learning setting, read back as it is set.
SETTINGS = [
    name for name in ProjectSettingsSerializer().fields if name not in ("description", "guidelines")
]


class ProjectListCreateApi(APIView):
    class InputSerializer(ProjectSettingsSerializer):
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=80, required=False)
        task_type = serializers.ChoiceField(
            choices=TaskType.choices, default=TaskType.IMAGE_CLASSIFICATION
        )
        classes = LabelClassSerializer(many=True, required=False)

    @extend_schema(responses=paginated(ProjectOutputSerializer), operation_id="projects_list")
    def get(self, request):
        return paginated_response(
            view=self,
            request=request,
            queryset=project_list(user=request.user),
            serializer=ProjectOutputSerializer,
            context={"request": request},
        )

    @extend_schema(request=InputSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request):
        if not user_can_create_projects(user=request.user):
            raise PermissionDeniedError("Only admins and ML engineers may create projects.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(created_by=request.user, **serializer.validated_data)
        data = ProjectOutputSerializer(project, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    class InputSerializer(ProjectSettingsSerializer):
        name = serializers.CharField(max_length=200, required=False)

    @extend_schema(responses=ProjectOutputSerializer)
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        return Response(ProjectOutputSerializer(project, context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses=ProjectOutputSerializer)
    def patch(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="edit_project")
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=project, **serializer.validated_data)
        return Response(ProjectOutputSerializer(project, context={"request": request}).data)


class ProjectClassesSetApi(APIView):
    class InputSerializer(StrictSerializer):
        classes = LabelClassSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=LabelClassSerializer(many=True))
    def put(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="edit_project")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        classes = label_classes_set(project=project, classes=serializer.validated_data["classes"])
        return Response(LabelClassSerializer(classes, many=True).data)


class ProjectMembersApi(APIView):
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=Role.choices)

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField(source="user.username")
        role = serializers.CharField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        members = Membership.objects.filter(project=project).select_related("user")
        return Response(self.OutputSerializer(members, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="manage_members")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = (
            get_user_model().objects.filter(username=serializer.validated_data["username"]).first()
        )
        if user is None:
            raise NotFoundError(f"No user '{serializer.validated_data['username']}'.")
        membership = membership_set(
            project=project, user=user, role=serializer.validated_data["role"]
        )
        return Response(self.OutputSerializer(membership).data, status=status.HTTP_201_CREATED)
