from django.contrib import admin

from surveys.models import Question, Respondent, Run, Survey


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ("position", "kind", "text")


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "created_at")
    search_fields = ("title", "owner__email")
    raw_id_fields = ("owner",)
    inlines = [QuestionInline]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "panel_label", "unit_cost", "stop_reason", "created_at")
    search_fields = ("title", "owner__email")
    raw_id_fields = ("owner", "survey", "job")
    readonly_fields = ("questions", "seed")


@admin.register(Respondent)
class RespondentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "run", "state", "error")
    list_filter = ("state",)
    raw_id_fields = ("run", "persona")
