"""REST views for items and imports."""

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.api.pagination import paginated, paginated_response
from loupe.api.permissions import require
from loupe.api.schema import ERROR
from loupe.datasets.models import ItemState, Split
from loupe.datasets.selectors import (
    import_job_get,
    import_job_list,
    import_rejections,
    item_file_open,
    item_get,
    item_list,
)
from loupe.datasets.services import import_job_create, import_upload_save
from loupe.datasets.uploads import upload_size_check
from loupe.projects.selectors import project_get


class ItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    original_name = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    metadata = serializers.JSONField()
    source = serializers.CharField()
    split = serializers.CharField()
    state = serializers.CharField()
    label = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    extra_file_urls = serializers.SerializerMethodField(
        help_text="the item's further images in order (a pair's right image first: image=1);"
        " empty for one-image items"
    )
    created_at = serializers.DateTimeField()

    def get_label(self, item) -> str | None:
        truth = getattr(item, "ground_truth", None)
        return truth.label_class.name if truth else None

    def get_file_url(self, item) -> str:
        return f"/api/v1/items/{item.pk}/file/"

    def get_extra_file_urls(self, item) -> list[str]:
        return [
            f"/api/v1/items/{item.pk}/file/?image={image}"
            for image in range(1, 1 + len(item.extra_files or ()))
        ]


ITEM_FILTERS = [
    OpenApiParameter("state", enum=ItemState.values),
    OpenApiParameter("split", enum=Split.values),
    OpenApiParameter("label", str, description="ground-truth class name"),
    OpenApiParameter("source", str),
]


class ItemListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=ItemState.choices, required=False)
        split = serializers.ChoiceField(choices=Split.choices, required=False)
        label = serializers.CharField(required=False)
        source = serializers.CharField(required=False)

    @extend_schema(parameters=ITEM_FILTERS, responses=paginated(ItemOutputSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        items = item_list(project=project, filters=filters.validated_data)
        return paginated_response(
            view=self, request=request, queryset=items, serializer=ItemOutputSerializer
        )


class ItemDetailApi(APIView):
    @extend_schema(responses=ItemOutputSerializer)
    def get(self, request, item_id: int):
        return Response(ItemOutputSerializer(item_get(user=request.user, item_id=item_id)).data)


class ItemFileApi(APIView):
    class FilterSerializer(serializers.Serializer):
        image = serializers.IntegerField(
            min_value=0,
            max_value=1000,
            required=False,
            default=0,
            help_text="0: the item's image; 1 and on: its further images (1: a pair's right)",
        )

    @extend_schema(parameters=[FilterSerializer], responses={(200, "image/*"): bytes})
    def get(self, request, item_id: int):
        item = item_get(user=request.user, item_id=item_id)
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        response = FileResponse(item_file_open(item=item, image=query.validated_data["image"]))
        response["Cache-Control"] = "private, max-age=86400, immutable"
        return response


class RejectionSerializer(serializers.Serializer):
    path = serializers.CharField()
    reason = serializers.CharField()


class ImportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    kind = serializers.CharField()
    source_path = serializers.CharField()
    source_tag = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    total = serializers.IntegerField(allow_null=True)
    processed = serializers.IntegerField()
    imported = serializers.IntegerField()
    labeled = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ImportDetailOutputSerializer(ImportOutputSerializer):
    rejections = serializers.SerializerMethodField()

    def get_rejections(self, job) -> list[dict]:
        return RejectionSerializer(import_rejections(job=job), many=True).data


class ImportListCreateApi(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        path = serializers.CharField(
            required=False, help_text="server-side folder, zip or manifest (inside import roots)"
        )
        file = serializers.FileField(required=False, help_text="an uploaded .zip archive")
        source_tag = serializers.CharField(required=False, allow_blank=True, max_length=100)
        holdout_fraction = serializers.FloatField(required=False, min_value=0.0, max_value=0.99)

        def validate(self, attrs):
            if bool(attrs.get("path")) == bool(attrs.get("file")):
                raise serializers.ValidationError("Give either a server-side path or a file.")
            return attrs

    @extend_schema(responses=paginated(ImportOutputSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        return paginated_response(
            view=self,
            request=request,
            queryset=import_job_list(project=project),
            serializer=ImportOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={202: ImportOutputSerializer, 413: ERROR})
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="import")
        serializer = self.InputSerializer(data=request.data)
        upload_size_check(request=request)  # the body is read: was a file over the limit?
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        options = {k: data[k] for k in ("source_tag", "holdout_fraction") if k in data}
        if data.get("file"):
            job = import_upload_save(
                project=project, uploaded_file=data["file"], created_by=request.user, **options
            )
        else:
            job = import_job_create(
                project=project, path=data["path"], created_by=request.user, **options
            )
        return Response(ImportOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportDetailApi(APIView):
    @extend_schema(responses=ImportDetailOutputSerializer)
    def get(self, request, import_id: int):
        job = import_job_get(user=request.user, import_job_id=import_id)
        return Response(ImportDetailOutputSerializer(job).data)
