"""REST views of labeling: the Label Studio webhook, deep links, sync, push, agreement and
the label-error review queue."""

import hmac
import logging

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from loupe import jobs
from loupe.api.permissions import require
from loupe.api.schema import ERROR
from loupe.datasets.selectors import item_get
from loupe.errors import ApplicationError, PermissionDeniedError
from loupe.labeling import adapter, review, selectors
from loupe.labeling.services import (
    ground_truth_review,
    project_sync,
    webhook_receive,
)
from loupe.labeling.sync import WEBHOOK_SECRET_HEADER
from loupe.learning.models import SelectionRound
from loupe.learning.selectors import selection_round_get
from loupe.projects.selectors import project_get

logger = logging.getLogger(__name__)

QUEUED = inline_serializer("Queued", {"status": serializers.CharField()})


class LabelingTaskSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    round_id = serializers.IntegerField()
    reason = serializers.CharField()
    is_control = serializers.BooleanField()
    ls_task_id = serializers.IntegerField(allow_null=True)
    task_url = serializers.CharField(allow_null=True)


class AnnotationOutSerializer(serializers.Serializer):
    ls_annotation_id = serializers.IntegerField(allow_null=True)
    annotator = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    was_cancelled = serializers.BooleanField()
    lead_time_seconds = serializers.FloatField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class GroundTruthOutSerializer(serializers.Serializer):
    label = serializers.CharField()
    decided_by = serializers.CharField()
    num_annotators = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    needs_review = serializers.BooleanField()


class ItemLabelingSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    state = serializers.CharField()
    split = serializers.CharField()
    task_url = serializers.CharField(allow_null=True)
    tasks = LabelingTaskSerializer(many=True)
    annotations = AnnotationOutSerializer(many=True)
    ground_truth = GroundTruthOutSerializer(allow_null=True)


class RoundLabelingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    push_error = serializers.CharField()
    push_attempts = serializers.IntegerField()
    pushed_at = serializers.DateTimeField(allow_null=True)
    tasks = serializers.IntegerField()
    items = serializers.IntegerField()
    item_states = serializers.DictField(child=serializers.IntegerField())
    label_now_url = serializers.CharField(allow_null=True)


def _label_studio_failure(exc: adapter.LabelStudioError) -> ApplicationError:
    if isinstance(exc, adapter.LabelStudioUnavailable):
        return ApplicationError(
            "Label Studio cannot be reached; try again in a moment.",
            code="label_studio_unavailable",
            status=503,
        )
    return ApplicationError(
        "Label Studio refused the request.",
        code="label_studio_error",
        status=502,
        extra={"status": exc.status_code, "body": str(exc.body)[:500]},
    )


class WebhookApi(APIView):
    """Label Studio's webhook: authenticated by the shared secret header, answered at once."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        # Label Studio's event payload: {"action", "project", "annotation"/"annotations",
        # "task"/"tasks"} (docs/label-studio.md lists the shapes Loupe reads).
        request=inline_serializer(
            "LabelStudioEvent",
            {"action": serializers.CharField(), "project": serializers.JSONField(required=False)},
        ),
        parameters=[OpenApiParameter(WEBHOOK_SECRET_HEADER, str, OpenApiParameter.HEADER)],
        responses={
            200: inline_serializer("WebhookAnswer", {"status": serializers.CharField()}),
            403: ERROR,
        },
    )
    def post(self, request):
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
        expected = settings.LABEL_STUDIO_WEBHOOK_SECRET
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            logger.warning("webhook refused: missing or wrong secret")
            raise PermissionDeniedError("Missing or wrong webhook secret.")
        return Response({"status": webhook_receive(payload=request.data)})


class ProjectLabelingApi(APIView):
    class OutputSerializer(serializers.Serializer):
        ls_project_id = serializers.IntegerField(allow_null=True)
        label_now_url = serializers.CharField(allow_null=True)
        project_url = serializers.CharField(allow_null=True)
        last_synced_at = serializers.DateTimeField(allow_null=True)
        last_full_sync_at = serializers.DateTimeField(allow_null=True)
        last_run_at = serializers.DateTimeField(allow_null=True)
        last_error = serializers.CharField()
        in_annotation = serializers.IntegerField()
        needs_review = serializers.IntegerField()
        draft_rounds = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        return Response(self.OutputSerializer(selectors.project_labeling(project=project)).data)


class ProjectSyncApi(APIView):
    """Creates or updates the Label Studio project now (config, guidelines, overlap)."""

    @extend_schema(
        request=None,
        responses={200: ProjectLabelingApi.OutputSerializer, 502: ERROR, 503: ERROR},
    )
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="run_jobs")
        try:
            project_sync(project=project)
        except adapter.LabelStudioError as exc:
            raise _label_studio_failure(exc) from exc
        data = selectors.project_labeling(project=project)
        return Response(ProjectLabelingApi.OutputSerializer(data).data)


class ProjectReconcileApi(APIView):
    class InputSerializer(serializers.Serializer):
        full = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer, responses={202: QUEUED})
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="run_jobs")
        if not project.ls_project_id:
            raise ApplicationError("This project is not linked to Label Studio yet.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jobs.enqueue(
            jobs.RECONCILE_PROJECT, project_id=project.pk, full=data.validated_data["full"]
        )
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


class AgreementClassSerializer(serializers.Serializer):
    name = serializers.CharField(source="class")
    votes = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    specific_agreement = serializers.FloatField(allow_null=True)


class AgreementAnnotatorSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    annotations = serializers.IntegerField()
    compared_items = serializers.IntegerField()
    agreement_with_others = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True)


class ProjectAgreementApi(APIView):
    """Krippendorff's alpha per project and class, Cohen's kappa per annotator."""

    class OutputSerializer(serializers.Serializer):
        items = serializers.IntegerField()
        annotations = serializers.IntegerField()
        alpha = serializers.FloatField(allow_null=True)
        pairwise_agreement = serializers.FloatField(allow_null=True)
        needs_review = serializers.IntegerField()
        classes = AgreementClassSerializer(many=True)
        annotators = AgreementAnnotatorSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        stats = selectors.agreement_stats(project=project)
        return Response(self.OutputSerializer(stats).data)


class ItemLabelingApi(APIView):
    """An item's Label Studio tasks (deep links), annotations and ground truth."""

    @extend_schema(responses=ItemLabelingSerializer)
    def get(self, request, item_id: int):
        item = item_get(user=request.user, item_id=item_id)
        return Response(ItemLabelingSerializer(selectors.item_labeling(item=item)).data)


class ItemReviewApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=100)

    @extend_schema(request=InputSerializer, responses=ItemLabelingSerializer)
    def post(self, request, item_id: int):
        item = item_get(user=request.user, item_id=item_id)
        require(user=request.user, project=item.project, action="label")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ground_truth_review(item=item, label_class_name=data.validated_data["label"])
        item.refresh_from_db()
        return Response(ItemLabelingSerializer(selectors.item_labeling(item=item)).data)


class RoundLabelingApi(APIView):
    @extend_schema(responses=RoundLabelingSerializer)
    def get(self, request, round_id: int):
        selection_round = selection_round_get(user=request.user, round_id=round_id)
        data = selectors.round_labeling(selection_round=selection_round)
        return Response(RoundLabelingSerializer(data).data)


class RoundPushApi(APIView):
    """Pushes a draft round to Label Studio in a worker (a pushed round is left alone)."""

    @extend_schema(request=None, responses={202: RoundLabelingSerializer})
    def post(self, request, round_id: int):
        selection_round = selection_round_get(user=request.user, round_id=round_id)
        require(user=request.user, project=selection_round.project, action="run_jobs")
        if selection_round.status == SelectionRound.Status.DRAFT:
            jobs.enqueue(jobs.PUSH_ROUND, selection_round_id=selection_round.pk)
        selection_round.refresh_from_db()
        data = selectors.round_labeling(selection_round=selection_round)
        return Response(RoundLabelingSerializer(data).data, status=status.HTTP_202_ACCEPTED)


class ReviewVoteSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    label = serializers.CharField()


class LabelSuspectSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()
    given = serializers.CharField(help_text="The label the item has now, under suspicion.")
    decided_by = serializers.CharField()
    decided = serializers.CharField(help_text="How the given label was decided, in words.")
    predicted = serializers.CharField(help_text="The model's most probable class.")
    confidence = serializers.FloatField(help_text="The model's probability of `predicted`.")
    suggested = serializers.CharField(help_text="The class the model is confidently in.")
    given_probability = serializers.FloatField()
    score = serializers.FloatField(help_text="How strongly another class is preferred, 0..1.")
    evidence = serializers.ChoiceField(choices=["holdout", "labeled_since", "training"])
    out_of_sample = serializers.BooleanField()
    agreement = serializers.FloatField(allow_null=True)
    num_annotators = serializers.IntegerField()
    votes = ReviewVoteSerializer(many=True)

    def get_image_url(self, suspect) -> str:
        return f"/api/v1/items/{suspect['item_id']}/file/"


class ReviewRoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    push_error = serializers.CharField()
    sent = serializers.IntegerField()
    confirmed = serializers.IntegerField()
    corrected = serializers.IntegerField()
    pending = serializers.IntegerField()


class LabelReviewApi(APIView):
    """Labels the latest model version doubts (confident learning), with their evidence, and
    the outcome of the review rounds sent so far."""

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["no_model", "scanning", "ready"])
        model_version = serializers.IntegerField(allow_null=True)
        checked = serializers.DictField(child=serializers.IntegerField())
        evidence_note = serializers.CharField()
        suspects = LabelSuspectSerializer(many=True)
        rounds = ReviewRoundSerializer(many=True)
        totals = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        queue = review.label_review_queue(project=project)
        return Response(self.OutputSerializer(queue).data)


class LabelReviewSendApi(APIView):
    """Sends the listed suspects (or the given ones) to Label Studio as a review round."""

    class InputSerializer(serializers.Serializer):
        item_ids = serializers.ListField(
            child=serializers.IntegerField(), required=False, max_length=review.MAX_SEND
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=review.MAX_SEND)

    @extend_schema(
        request=InputSerializer, responses={202: ReviewRoundSerializer, 400: ERROR, 409: ERROR}
    )
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        require(user=request.user, project=project, action="run_jobs")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        selection_round = review.label_review_send(project=project, **data.validated_data)
        sent = next(
            r for r in review.review_rounds(project=project) if r["id"] == selection_round.pk
        )
        return Response(ReviewRoundSerializer(sent).data, status=status.HTTP_202_ACCEPTED)
