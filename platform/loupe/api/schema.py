"""OpenAPI generation. Serializers nested in views (`ItemListApi.FilterSerializer`) get the
view's name as a prefix, so the many `InputSerializer`s do not collide in the schema."""

from drf_spectacular import openapi


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        owner, _, _ = type(serializer).__qualname__.rpartition(".")
        if owner:
            return owner.removesuffix("Api") + name
        return name
