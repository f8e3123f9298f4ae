"""A start form for any job kind, built from the kind's parameter serializer.

The serializer stays the one place that defines and validates parameters; the form
only renders them and carries the serializer's errors back onto its fields.
"""

from django import forms
from rest_framework import serializers

_SIMPLE = {
    serializers.IntegerField: forms.IntegerField,
    serializers.FloatField: forms.FloatField,
    serializers.BooleanField: forms.BooleanField,
    serializers.CharField: forms.CharField,
}


def _form_field(name, field):
    common = {"label": field.label or name.replace("_", " ").capitalize(), "help_text": field.help_text or ""}
    common["required"] = field.required and not isinstance(field, serializers.BooleanField)
    default = field.default if field.default is not serializers.empty else None
    if callable(default):
        default = default()
    if isinstance(field, serializers.ListField) and isinstance(field.child, serializers.ChoiceField):
        return forms.MultipleChoiceField(choices=list(field.child.choices.items()), initial=default, widget=forms.CheckboxSelectMultiple, **common)
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=list(field.choices.items()), initial=default, **common)
    for serializer_type, form_type in _SIMPLE.items():
        if isinstance(field, serializer_type):
            kwargs = {}
            if getattr(field, "max_length", None):
                kwargs["max_length"] = field.max_length
            if isinstance(field, serializers.CharField) and getattr(field, "style", {}).get("base_template") == "textarea.html":
                kwargs["widget"] = forms.Textarea(attrs={"rows": 6})
            return form_type(initial=default, **common, **kwargs)
    return forms.CharField(initial=default, **common)


def params_form_class(kind):
    fields = {name: _form_field(name, field) for name, field in kind.Params().fields.items() if not field.read_only}
    return type(f"{kind.name.title().replace('-', '')}ParamsForm", (forms.Form,), fields)


def carry_errors(form, detail):
    """Put a DRF ValidationError's detail onto the form's fields."""
    if isinstance(detail, dict):
        for name, messages in detail.items():
            target = name if name in form.fields else None
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(target, str(message))
    else:
        for message in detail if isinstance(detail, list) else [detail]:
            form.add_error(None, str(message))
