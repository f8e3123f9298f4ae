from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import TokenScope

# The same numbers as the API's expires_in_days (docs/api-guide.md): days, or never (null).
EXPIRY_CHOICES = [("30", _("30 days")), ("90", _("90 days")), ("365", _("365 days")), ("", _("Never"))]


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What uses it, e.g. “CI deploy”."))
    scope = forms.ChoiceField(label=_("Scope"), choices=TokenScope.choices, initial=TokenScope.READ)
    expires_in_days = forms.ChoiceField(label=_("Expires after"), choices=EXPIRY_CHOICES, initial="90", required=False,
                                        help_text=_("In the API: expires_in_days (a number of days, or null for never)."))

    def expires_at(self):
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=int(days)) if days else None
