"""REST views of the dashboards' statistics and of the ground-truth exports. Each view checks
that the user may see the project, calls one selector and serializes."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.api.permissions import require
from loupe.api.schema import ERROR
from loupe.errors import ApplicationError
from loupe.insights import exports, selectors
from loupe.projects.selectors import project_get

_ANY = serializers.JSONField()
DAYS = OpenApiParameter(
    "days",
    {"type": "integer", "minimum": 1, "maximum": 365, "default": 14},
    description="window of recent days (1-365, default 14)",
)


def _days(request) -> int:
    raw = request.query_params.get("days", "14")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= 365:
        raise ApplicationError("days must be a whole number from 1 to 365.", extra={"days": raw})
    return int(raw)


class ClassBalanceApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ClassSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField()
            target = serializers.IntegerField(allow_null=True)
            ground_truth = serializers.IntegerField()
            train = serializers.IntegerField()
            holdout = serializers.IntegerField()
            needs_review = serializers.IntegerField()
            queued = serializers.IntegerField()
            in_annotation = serializers.IntegerField()
            predicted_in_pool = serializers.IntegerField(allow_null=True)
            progress = serializers.FloatField(allow_null=True)
            remaining = serializers.IntegerField(allow_null=True)

        model_version = serializers.IntegerField(allow_null=True)
        classes = ClassSerializer(many=True)
        unassigned = serializers.DictField(child=serializers.IntegerField())
        totals = _ANY

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        """Per class: ground truth, queued, in annotation, predicted in the pool, and
        progress against the target."""
        project = project_get(user=request.user, slug=slug)
        return Response(self.OutputSerializer(selectors.class_balance(project=project)).data)


class ImbalanceApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ClassSerializer(serializers.Serializer):
            name = serializers.CharField()
            train = serializers.IntegerField()
            share = serializers.FloatField(allow_null=True)
            effective_samples = serializers.FloatField()
            class_weight = serializers.FloatField()

        weighting = serializers.CharField()
        beta = serializers.FloatField()
        labels = serializers.IntegerField()
        ratio = serializers.FloatField(allow_null=True)
        majority = serializers.CharField(allow_null=True)
        minority = serializers.CharField(allow_null=True)
        empty_classes = serializers.ListField(child=serializers.CharField())
        classes = ClassSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        """Imbalance ratio, effective number of samples and the class weights training uses."""
        project = project_get(user=request.user, slug=slug)
        return Response(self.OutputSerializer(selectors.imbalance(project=project)).data)


class ThroughputApi(APIView):
    class OutputSerializer(serializers.Serializer):
        days = serializers.IntegerField()
        per_day = serializers.ListField(child=serializers.DictField())
        annotations_in_window = serializers.IntegerField()
        labels_in_window = serializers.IntegerField()
        annotators = serializers.ListField(child=serializers.DictField())

    @extend_schema(parameters=[DAYS], responses=OutputSerializer)
    def get(self, request, slug: str):
        """Annotations and labels per day, and per annotator."""
        project = project_get(user=request.user, slug=slug)
        data = selectors.throughput(project=project, days=_days(request))
        return Response(self.OutputSerializer(data).data)


class EtaApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ClassSerializer(serializers.Serializer):
            name = serializers.CharField()
            target = serializers.IntegerField(allow_null=True)
            labeled = serializers.IntegerField()
            remaining = serializers.IntegerField(allow_null=True)
            hit_rate = serializers.FloatField(allow_null=True)
            hit_rate_basis = serializers.CharField(allow_null=True)
            predicted_share = serializers.FloatField(
                allow_null=True, help_text="the latest model's share of the pool for the class"
            )
            pool_may_hold = serializers.IntegerField(
                allow_null=True,
                help_text="items of the class the items left may hold, at the predicted share",
            )
            reachable = serializers.BooleanField(
                allow_null=True,
                help_text="false: the current pool cannot meet the target (no time is given)",
            )
            labels_needed = serializers.IntegerField(allow_null=True)
            labels_per_day = serializers.FloatField(allow_null=True)
            eta_days = serializers.FloatField(
                allow_null=True, help_text="calendar days at the pace, once a day has passed"
            )
            eta_hours = serializers.FloatField(
                allow_null=True, help_text="hours of labeling at the pace, before a day has passed"
            )
            eta_date = serializers.CharField(allow_null=True)
            message = serializers.CharField()

        days = serializers.IntegerField()
        recent_labels = serializers.IntegerField()
        rate_span_hours = serializers.FloatField(
            allow_null=True,
            help_text="hours from the window's first new label to now (at least one)",
        )
        labels_per_hour = serializers.FloatField()
        labels_per_day = serializers.FloatField(
            allow_null=True, help_text="null until a whole day has passed since the first label"
        )
        rate_message = serializers.CharField()
        items_left = serializers.IntegerField(help_text="unlabeled, queued or in annotation")
        model_version = serializers.IntegerField(allow_null=True)
        pool_predicted = serializers.IntegerField(allow_null=True)
        classes = ClassSerializer(many=True)

    @extend_schema(parameters=[DAYS], responses=OutputSerializer)
    def get(self, request, slug: str):
        """Per target: labels still needed at the observed hit rate, capped by what the pool
        may hold, and the time at the pace observed since the window's first new label."""
        project = project_get(user=request.user, slug=slug)
        return Response(
            self.OutputSerializer(selectors.eta(project=project, days=_days(request))).data
        )


class AgreementApi(APIView):
    class OutputSerializer(serializers.Serializer):
        items_compared = serializers.IntegerField()
        pairs = serializers.IntegerField()
        pairwise_agreement = serializers.FloatField(allow_null=True)
        classes = serializers.ListField(child=serializers.DictField())
        annotators = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        """Pairwise agreement of annotators overall, per class and per annotator."""
        project = project_get(user=request.user, slug=slug)
        return Response(self.OutputSerializer(selectors.agreement(project=project)).data)


class DriftApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("refresh", bool, description="recompute instead of the cache"),
            OpenApiParameter("cached", bool, description="only answer from the cache"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, slug: str):
        """Covariate-shift tests (labeled vs pool, between sources, newest import vs
        earlier) on the latest model's embeddings; cached per scoring run."""
        project = project_get(user=request.user, slug=slug)
        flag = request.query_params.get
        data = selectors.drift(
            project=project,
            refresh=flag("refresh") in ("1", "true"),
            compute=flag("cached") not in ("1", "true"),
        )
        return Response(data)


class LearningCurveApi(APIView):
    class OutputSerializer(serializers.Serializer):
        versions = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        """Holdout and control-slice metrics per model version against labels used."""
        project = project_get(user=request.user, slug=slug)
        return Response(self.OutputSerializer(selectors.learning_curve(project=project)).data)


class StoppingApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, slug: str):
        """Whether more labels still pay: stable predictions and a flat holdout metric."""
        project = project_get(user=request.user, slug=slug)
        return Response(selectors.stopping(project=project))


def _split(request) -> str | None:
    split = request.query_params.get("split") or None
    if split is not None and split not in exports.EXPORT_SPLITS:
        raise ApplicationError(
            f"Unknown split '{split}'.", extra={"splits": list(exports.EXPORT_SPLITS)}
        )
    return split


def _download(stream, *, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


SPLIT = OpenApiParameter("split", str, enum=list(exports.EXPORT_SPLITS))


class ExportCsvApi(APIView):
    @extend_schema(parameters=[SPLIT], responses={(200, "text/csv"): OpenApiTypes.STR, 403: ERROR})
    def get(self, request, slug: str):
        """Ground truth as CSV, streamed."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="export")
        stream = exports.export_csv(project=project, split=_split(request))
        return _download(stream, content_type="text/csv", filename=f"{slug}-ground-truth.csv")


class ExportJsonlApi(APIView):
    @extend_schema(
        parameters=[SPLIT],
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR, 403: ERROR},
    )
    def get(self, request, slug: str):
        """Ground truth as JSON lines, streamed."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="export")
        stream = exports.export_jsonl(project=project, split=_split(request))
        return _download(
            stream, content_type="application/x-ndjson", filename=f"{slug}-ground-truth.jsonl"
        )


class ExportImageFolderApi(APIView):
    @extend_schema(
        parameters=[SPLIT],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 403: ERROR},
    )
    def get(self, request, slug: str):
        """Labeled images as an ImageFolder zip (`<split>/<class>/<file>`), streamed."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="export")
        stream = exports.export_imagefolder(project=project, split=_split(request))
        return _download(stream, content_type="application/zip", filename=f"{slug}-images.zip")


class ExportCocoApi(APIView):
    @extend_schema(
        parameters=[SPLIT],
        responses={(200, "application/json"): OpenApiTypes.BINARY, 400: ERROR, 403: ERROR},
    )
    def get(self, request, slug: str):
        """The boxes of a detection project as COCO instances json, streamed."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="export")
        stream = exports.export_coco(project=project, split=_split(request))
        return _download(stream, content_type="application/json", filename=f"{slug}-coco.json")


class ExportYoloApi(APIView):
    @extend_schema(
        parameters=[SPLIT],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 400: ERROR, 403: ERROR},
    )
    def get(self, request, slug: str):
        """A detection project's pages and boxes as a YOLO folder zip, streamed."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="export")
        stream = exports.export_yolo(project=project, split=_split(request))
        return _download(stream, content_type="application/zip", filename=f"{slug}-yolo.zip")
