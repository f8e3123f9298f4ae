from django import forms
from django.utils.translation import gettext_lazy as _

from .exercise_file import MAX_TTL


class EnrolCodeForm(forms.Form):
    code = forms.CharField(label=_("Enrolment code"), max_length=32)


class EnrolPersonForm(forms.Form):
    username = forms.CharField(label=_("Existing username"), max_length=150, required=False)
    name = forms.CharField(label=_("Name"), max_length=300, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    ssh_public_key = forms.CharField(label=_("SSH public key"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                     help_text=_("Optional; used by SSH exercises."))

    def clean(self):
        data = super().clean()
        if not data.get("username") and not data.get("email"):
            raise forms.ValidationError(_("Give a username, or a name and an email."))
        return data


class EnrolCsvForm(forms.Form):
    csv = forms.FileField(label=_("CSV file"), required=False, help_text=_("One student a line: name, email, optional SSH public key."))
    csv_text = forms.CharField(label=_("or paste it"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def clean(self):
        data = super().clean()
        if not data.get("csv") and not data.get("csv_text"):
            raise forms.ValidationError(_("Choose a CSV file."))
        return data

    def text(self):
        upload = self.cleaned_data.get("csv")
        if upload:
            return upload.read().decode("utf-8-sig", errors="replace")
        return self.cleaned_data["csv_text"]


class ExerciseImportForm(forms.Form):
    file = forms.FileField(label=_("Exercise file"), help_text=_("A YAML exercise file; an exercise with the same slug is replaced."))


class ExtendForm(forms.Form):
    minutes = forms.IntegerField(label=_("Minutes"), min_value=1, max_value=int(MAX_TTL.total_seconds() // 60), initial=60)
