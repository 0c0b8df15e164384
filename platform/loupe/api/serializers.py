"""Serializer pieces shared by the API."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them: a misspelt setting answered 200 and
    silently ignored is worse than a 400."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [f"Unknown field. Known: {', '.join(sorted(self.fields))}."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)
