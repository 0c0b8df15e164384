"""REST views of the learning loop: start and cancel jobs, follow their progress, read model
versions, their predictions and selection rounds."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe.api.keyset import KeysetPagination
from loupe.api.pagination import paginated, paginated_response
from loupe.api.permissions import require
from loupe.api.schema import ERROR
from loupe.api.serializers import StrictSerializer
from loupe.datasets.models import ItemState, Split
from loupe.insights.curves import NO_CONTROL, control_slice_scores
from loupe.insights.loops import loop_progress, step_seconds
from loupe.learning import exports
from loupe.learning.loop import loop_cancel, loop_start
from loupe.learning.models import LearningLoop, ModelVersion, SelectionRound, TrainingRun
from loupe.learning.selectors import (
    PREDICTION_ORDERINGS,
    item_file_url,
    loop_get,
    model_version_get,
    prediction_class_name,
    prediction_list,
    prediction_probabilities,
    prediction_version,
    scoring_run_get,
    selection_round_get,
    selection_round_items,
    training_run_get,
)
from loupe.learning.training import training_run_cancel, training_run_create
from loupe.projects.selectors import project_get


class ProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    phase = serializers.CharField()
    progress = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingRunSerializer(ProgressSerializer):
    trigger = serializers.CharField()
    config = serializers.JSONField()
    device = serializers.CharField()
    labels_used = serializers.IntegerField()
    holdout_size = serializers.IntegerField()
    class_weights = serializers.JSONField()
    loss_curve = serializers.JSONField()
    attempts = serializers.IntegerField()
    model_version = serializers.SerializerMethodField()

    def get_model_version(self, run) -> int | None:
        version = ModelVersion.objects.filter(training_run=run).values_list("pk", flat=True)
        return version.first()


class ScoringRunSerializer(ProgressSerializer):
    model_version = serializers.IntegerField(source="model_version_id")
    total_items = serializers.IntegerField()
    scored_items = serializers.IntegerField()
    chunks_total = serializers.IntegerField()
    chunks_done = serializers.IntegerField()


class LoopSerializer(ProgressSerializer):
    # Over the whole loop, from the runs of its steps (the loop's row moves only between steps).
    progress = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    step = serializers.CharField()
    trigger = serializers.CharField()
    timings = serializers.JSONField()
    training_run = TrainingRunSerializer(allow_null=True)
    scoring_run = ScoringRunSerializer(allow_null=True)
    selection_round = serializers.IntegerField(source="selection_round_id", allow_null=True)

    def _shown(self, loop) -> dict:
        if getattr(loop, "_shown", None) is None:
            loop._shown = loop_progress(loop=loop, seconds=step_seconds(project=loop.project))
        return loop._shown

    def get_progress(self, loop) -> float:
        return self._shown(loop)["progress"]

    def get_eta_seconds(self, loop) -> float | None:
        return self._shown(loop)["eta_seconds"]


class ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    training_run = serializers.IntegerField(source="training_run_id")
    model_kind = serializers.CharField()
    image_size = serializers.IntegerField()
    class_names = serializers.JSONField()
    metrics = serializers.JSONField()
    baseline_metrics = serializers.JSONField()
    labels_used = serializers.IntegerField()
    device = serializers.CharField()
    train_seconds = serializers.FloatField()
    # Where training started: the version it fine-tuned, or why it trained from scratch.
    warm_start_from = serializers.IntegerField(
        source="training_run.config.warm_start_from", allow_null=True
    )
    from_scratch = serializers.CharField(source="training_run.config.from_scratch", allow_null=True)
    pool_estimate = serializers.SerializerMethodField(
        help_text="accuracy on the pool, estimated from the labeled random control picks"
    )
    created_at = serializers.DateTimeField()

    def get_pool_estimate(self, version) -> dict:
        return control_slice_scores(version.project).get(version.pk, NO_CONTROL)


class SelectionItemSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    strategy = serializers.CharField()
    is_control = serializers.BooleanField()
    predicted_class = serializers.CharField(source="predicted_class.name", allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    item_state = serializers.CharField(source="item.state")
    ls_task_id = serializers.IntegerField(allow_null=True)


class SelectionRoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    strategy = serializers.CharField()
    batch_size = serializers.IntegerField()
    control_fraction = serializers.FloatField()
    pool_size = serializers.IntegerField()
    model_version = serializers.IntegerField(source="model_version_id", allow_null=True)
    # A mix of strategies (the adaptive default): its split of the batch and why.
    mix = serializers.JSONField()
    push_error = serializers.CharField()
    created_at = serializers.DateTimeField()


class SelectionRoundDetailSerializer(SelectionRoundSerializer):
    items = serializers.SerializerMethodField()

    def get_items(self, selection_round) -> list[dict]:
        picks = selection_round_items(selection_round=selection_round)
        return SelectionItemSerializer(picks, many=True).data


class ProjectLoopsApi(APIView):
    @extend_schema(responses=paginated(LoopSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        loops = LearningLoop.objects.filter(project=project).select_related(
            "training_run", "scoring_run"
        )
        return paginated_response(
            view=self, request=request, queryset=loops, serializer=LoopSerializer
        )

    class InputSerializer(StrictSerializer):
        force = serializers.BooleanField(
            default=False, help_text="retrain even when the latest model has seen every label"
        )

    @extend_schema(
        request=InputSerializer, responses={202: LoopSerializer, 200: LoopSerializer, 409: ERROR}
    )
    def post(self, request, slug: str):
        """Starts train -> score -> select; answers 200 with the active loop if one runs, 409
        when no label arrived since the latest model (unless `force`)."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="run_jobs")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        loop, created = loop_start(
            project=project, created_by=request.user, force=serializer.validated_data["force"]
        )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(LoopSerializer(loop).data, status=code)


class LoopDetailApi(APIView):
    @extend_schema(responses=LoopSerializer)
    def get(self, request, loop_id: int):
        return Response(LoopSerializer(loop_get(user=request.user, loop_id=loop_id)).data)


class LoopCancelApi(APIView):
    @extend_schema(request=None, responses=LoopSerializer)
    def post(self, request, loop_id: int):
        loop = loop_get(user=request.user, loop_id=loop_id)
        require(user=request.user, project=loop.project, action="run_jobs")
        return Response(LoopSerializer(loop_cancel(loop=loop)).data)


class ProjectTrainingRunsApi(APIView):
    @extend_schema(responses=paginated(TrainingRunSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        runs = TrainingRun.objects.filter(project=project)
        return paginated_response(
            view=self, request=request, queryset=runs, serializer=TrainingRunSerializer
        )

    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request, slug: str):
        """Trains a new model version without scoring or selecting."""
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="run_jobs")
        run = training_run_create(project=project, created_by=request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request, run_id: int):
        run = training_run_get(user=request.user, run_id=run_id)
        return Response(TrainingRunSerializer(run).data)


class TrainingRunCancelApi(APIView):
    @extend_schema(request=None, responses=TrainingRunSerializer)
    def post(self, request, run_id: int):
        run = training_run_get(user=request.user, run_id=run_id)
        require(user=request.user, project=run.project, action="run_jobs")
        return Response(TrainingRunSerializer(training_run_cancel(run=run)).data)


class ScoringRunDetailApi(APIView):
    @extend_schema(responses=ScoringRunSerializer)
    def get(self, request, run_id: int):
        run = scoring_run_get(user=request.user, run_id=run_id)
        return Response(ScoringRunSerializer(run).data)


class ProjectModelVersionsApi(APIView):
    @extend_schema(responses=paginated(ModelVersionSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        versions = ModelVersion.objects.filter(project=project).select_related("training_run")
        return paginated_response(
            view=self, request=request, queryset=versions, serializer=ModelVersionSerializer
        )


class ModelVersionDetailApi(APIView):
    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request, version_id: int):
        version = model_version_get(user=request.user, version_id=version_id)
        return Response(ModelVersionSerializer(version).data)


class ProjectSelectionRoundsApi(APIView):
    @extend_schema(responses=paginated(SelectionRoundSerializer))
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        rounds = SelectionRound.objects.filter(project=project)
        return paginated_response(
            view=self, request=request, queryset=rounds, serializer=SelectionRoundSerializer
        )


class SelectionRoundDetailApi(APIView):
    @extend_schema(responses=SelectionRoundDetailSerializer)
    def get(self, request, round_id: int):
        selection_round = selection_round_get(user=request.user, round_id=round_id)
        return Response(SelectionRoundDetailSerializer(selection_round).data)


class PredictionSerializer(serializers.Serializer):
    """One item as a model version sees it. The version comes in the context: a page holds
    one version's predictions."""

    item_id = serializers.IntegerField()
    file_url = serializers.SerializerMethodField()
    state = serializers.CharField(source="item.state")
    split = serializers.CharField(source="item.split")
    predicted_class = serializers.SerializerMethodField()
    confidence = serializers.FloatField()
    uncertainty = serializers.FloatField()
    probabilities = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    scored_at = serializers.DateTimeField(source="created_at")

    def get_file_url(self, prediction) -> str:
        return item_file_url(item_id=prediction.item_id)

    def get_predicted_class(self, prediction) -> str | None:
        names = self.context["model_version"].class_names
        return prediction_class_name(prediction=prediction, class_names=names)

    def get_probabilities(self, prediction) -> dict[str, float]:
        names = self.context["model_version"].class_names
        return prediction_probabilities(class_names=names, probs=prediction.probs)

    def get_version(self, prediction) -> int:
        return self.context["model_version"].version


PREDICTION_FILTERS = [
    OpenApiParameter(
        "version",
        {"type": "integer", "minimum": 1},
        description="model version number (default: the latest version that has predictions)",
    ),
    OpenApiParameter("state", enum=ItemState.values, description="item state"),
    OpenApiParameter("split", enum=Split.values),
    OpenApiParameter("label", str, description="predicted class name"),
    OpenApiParameter("ordering", enum=list(PREDICTION_ORDERINGS), default="-uncertainty"),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        description="rows per page, 1 to 500",
    ),
]


class ProjectPredictionsApi(APIView):
    class FilterSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False, min_value=1)
        state = serializers.ChoiceField(choices=ItemState.choices, required=False)
        split = serializers.ChoiceField(choices=Split.choices, required=False)
        label = serializers.CharField(required=False)
        ordering = serializers.ChoiceField(
            choices=list(PREDICTION_ORDERINGS), required=False, default="-uncertainty"
        )
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)
        cursor = serializers.CharField(required=False)
        format = serializers.CharField(required=False)

        def validate(self, attrs):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown filter." for name in unknown})
            return attrs

    @extend_schema(
        parameters=PREDICTION_FILTERS,
        responses=paginated(PredictionSerializer, paginator=KeysetPagination),
    )
    def get(self, request, slug: str):
        """Per-item predictions of one model version, cursor-paginated."""
        project = project_get(user=request.user, slug=slug)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        version = prediction_version(project=project, number=data.get("version"))
        field, descending = PREDICTION_ORDERINGS[data["ordering"]]
        paginator = KeysetPagination(
            field=field, descending=descending, page_size=data["page_size"]
        )
        predictions = prediction_list(project=project, model_version=version, filters=data)
        page = paginator.paginate(predictions, request)
        rows = PredictionSerializer(page, many=True, context={"model_version": version})
        return paginator.response(rows.data)


class _PredictionExportApi(APIView):
    content_type = ""
    suffix = ""

    def perform_content_negotiation(self, request, force=False):
        # The body is a file whatever the client accepts; errors still answer in JSON.
        return super().perform_content_negotiation(request, force=True)

    def stream(self, model_version):
        raise NotImplementedError

    def get(self, request, version_id: int):
        version = model_version_get(user=request.user, version_id=version_id)
        response = StreamingHttpResponse(self.stream(version), content_type=self.content_type)
        name = f"{version.project.slug}-v{version.version}-predictions.{self.suffix}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ModelVersionPredictionsCsvApi(_PredictionExportApi):
    content_type, suffix = "text/csv", "csv"

    def stream(self, model_version):
        return exports.predictions_csv(model_version=model_version)

    @extend_schema(
        operation_id="model_version_predictions_csv",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, version_id: int):
        """Every prediction of the version as CSV, streamed; one `p_<class>` column per class."""
        return super().get(request, version_id)


class ModelVersionPredictionsJsonlApi(_PredictionExportApi):
    content_type, suffix = "application/x-ndjson", "jsonl"

    def stream(self, model_version):
        return exports.predictions_jsonl(model_version=model_version)

    @extend_schema(
        operation_id="model_version_predictions_jsonl",
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    def get(self, request, version_id: int):
        """Every prediction of the version as JSON lines, streamed."""
        return super().get(request, version_id)
