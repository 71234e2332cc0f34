from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backoffice import services as backoffice
from backoffice.forms import CreditChangeForm, QuotaForm
from billing.selectors import ledger_for_user
from cohorta.accounts.models import ApiToken, User
from cohorta.accounts.services import user_set_active
from cohorta.audit.admin_tools import change_reason_field
from cohorta.errors import ApplicationError
from usage.selectors import effective_quota_expression, month_spend_subquery


class UserAdminForm(UserChangeForm):
    change_reason = change_reason_field()


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return [("admin", "Admin"), ("researcher", "Researcher")]

    def queryset(self, request, queryset):
        if self.value() == "admin":
            return queryset.filter(is_staff=True)
        if self.value() == "researcher":
            return queryset.filter(is_staff=False)
        return queryset


class QuotaFilter(admin.SimpleListFilter):
    """Uses the list's annotations: month_spend and effective_quota."""

    title = "quota"
    parameter_name = "quota"

    def lookups(self, request, model_admin):
        return [
            ("over", "Quota used up"),
            ("warning", "Over 80% used"),
            ("custom", "Own quota set"),
            ("default", "Default quota"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "over":
            return queryset.filter(month_spend__gte=F("effective_quota"))
        if value == "warning":
            return queryset.filter(month_spend__gte=F("effective_quota") * Decimal("0.8"))
        if value == "custom":
            return queryset.filter(monthly_quota_usd__isnull=False)
        if value == "default":
            return queryset.filter(monthly_quota_usd__isnull=True)
        return queryset


class BalanceFilter(admin.SimpleListFilter):
    title = "credit balance"
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [("zero", "No credits"), ("low", "1–9 credits"), ("some", "10 or more")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "zero":
            return queryset.filter(credit_balance=0)
        if value == "low":
            return queryset.filter(credit_balance__gte=1, credit_balance__lt=10)
        if value == "some":
            return queryset.filter(credit_balance__gte=10)
        return queryset


class SpendFilter(admin.SimpleListFilter):
    title = "LLM spend this month"
    parameter_name = "spend"

    def lookups(self, request, model_admin):
        return [("yes", "Has spent"), ("no", "Nothing yet")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(month_spend__gt=0)
        if self.value() == "no":
            return queryset.filter(month_spend=0)
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserAdminForm
    ordering = ["email"]
    list_display = [
        "email",
        "name",
        "role",
        "balance",
        "month_spend_usd",
        "quota_usd",
        "is_active",
        "last_login",
    ]
    list_filter = [RoleFilter, "is_active", QuotaFilter, SpendFilter, BalanceFilter, "is_superuser"]
    search_fields = ["email", "name"]
    search_help_text = "Email or name"
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Credits and quota",
            {
                "fields": ("credit_balance", "month_spend_usd", "monthly_quota_usd", "quota_usd"),
                "description": "The balance changes only through the credit ledger: use “Grant or adjust "
                "credits” above.",
            },
        ),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        ("Audit", {"fields": ("change_reason",)}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ["credit_balance", "month_spend_usd", "quota_usd", "last_login", "date_joined"]
    actions = ["enable_users", "disable_users", "make_admins", "make_researchers", "change_credits", "set_quota"]

    def get_queryset(self, request):
        # Month spend and effective quota are computed in the list query itself: the spend is a
        # correlated SUM over usage_user_created_idx for each listed user, the quota a COALESCE
        # with the app settings row. A page of users costs the same few queries for 5 or 50,000.
        return (
            super()
            .get_queryset(request)
            .annotate(month_spend=month_spend_subquery(), effective_quota=effective_quota_expression())
        )

    # --- columns ---------------------------------------------------------------------------------

    @admin.display(description="Role", ordering="is_staff")
    def role(self, user: User) -> str:
        return user.role

    @admin.display(description="Balance", ordering="credit_balance")
    def balance(self, user: User) -> int:
        return user.credit_balance

    @admin.display(description="Month spend", ordering="month_spend")
    def month_spend_usd(self, user: User) -> str:
        spend = getattr(user, "month_spend", None)
        return "—" if spend is None else f"${spend:,.2f}"

    @admin.display(description="Quota (USD/month)", ordering="effective_quota")
    def quota_usd(self, user: User):
        quota = getattr(user, "effective_quota", None)
        if quota is None:
            return "—"
        spend = getattr(user, "month_spend", None) or Decimal(0)
        used = f"{min(999, int(spend * 100 / quota))}% used" if quota > 0 else "no LLM work"
        source = "default" if user.monthly_quota_usd is None else "own quota"
        return format_html(
            '<span class="bo-nowrap">${}</span> <span class="bo-muted bo-nowrap">{} · {}</span>',
            f"{quota:,.2f}",
            used,
            source,
        )

    # --- change form -------------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            user_set_active(user=obj, active=False)  # also cancels the user's running jobs

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            return
        # Audited after the many-to-many fields (groups, permissions) are saved too.
        fields = [f for f in form.changed_data if f in backoffice.USER_AUDITED_FIELDS]
        backoffice.user_form_changes_audit(
            user=form.instance,
            before={f: _comparable(form.initial.get(f)) for f in fields},
            after={f: _comparable(form.cleaned_data.get(f)) for f in fields},
            actor=request.user,
            request=request,
            reason=form.cleaned_data.get("change_reason", ""),
        )

    def get_urls(self):
        urls = super().get_urls()
        credits = path(
            "<path:object_id>/credits/",
            self.admin_site.admin_view(self.credits_view),
            name="accounts_user_credits",
        )
        return [credits, *urls]

    def credits_view(self, request, object_id):
        """Grant or correct one user's credits: a new ledger row, never an edit of old ones."""
        user = self.get_object(request, object_id)
        if user is None:
            raise Http404("No such user.")
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        form = CreditChangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                backoffice.credits_admin_change(users=[user], actor=request.user, request=request, **_credit_args(form))
            except ApplicationError as exc:
                form.add_error(None, f"Nothing was changed. {exc.message}")
            else:
                self.message_user(request, f"Credits updated for {user.email}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
        return self._form_page(
            request,
            form,
            users=[user],
            title=f"Grant or adjust credits: {user.email}",
            submit="Record",
            ledger=ledger_for_user(user=user)[:10],
        )

    # --- actions -----------------------------------------------------------------------------------

    @admin.action(description="Enable selected users")
    def enable_users(self, request, queryset):
        self._each(
            request,
            queryset,
            "enabled",
            lambda u: backoffice.active_admin_set(
                user=u, active=True, actor=request.user, request=request, reason="Admin action: enable"
            ),
        )

    @admin.action(description="Disable selected users (cancels their jobs)")
    def disable_users(self, request, queryset):
        self._each(
            request,
            queryset,
            "disabled",
            lambda u: backoffice.active_admin_set(
                user=u, active=False, actor=request.user, request=request, reason="Admin action: disable"
            ),
        )

    @admin.action(description="Make selected users admins (staff and superuser)")
    def make_admins(self, request, queryset):
        self._each(
            request,
            queryset,
            "made admin",
            lambda u: backoffice.role_admin_set(
                user=u, admin=True, actor=request.user, request=request, reason="Admin action: promote"
            ),
        )

    @admin.action(description="Make selected users researchers (remove admin access)")
    def make_researchers(self, request, queryset):
        self._each(
            request,
            queryset,
            "made researcher",
            lambda u: backoffice.role_admin_set(
                user=u, admin=False, actor=request.user, request=request, reason="Admin action: demote"
            ),
        )

    @admin.action(description="Grant or adjust credits of selected users…")
    def change_credits(self, request, queryset):
        form = CreditChangeForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                entries = backoffice.credits_admin_change(
                    users=queryset, actor=request.user, request=request, **_credit_args(form)
                )
            except ApplicationError as exc:
                self.message_user(request, f"Nothing was changed. {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Credits recorded for {len(entries)} user(s).", messages.SUCCESS)
            return None
        return self._form_page(
            request, form, users=queryset, title="Grant or adjust credits", submit="Record", action="change_credits"
        )

    @admin.action(description="Set the monthly quota of selected users…")
    def set_quota(self, request, queryset):
        form = QuotaForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            changed = backoffice.quota_admin_set(
                users=queryset,
                quota_usd=form.cleaned_data["quota_usd"],
                reason=form.cleaned_data["reason"],
                actor=request.user,
                request=request,
            )
            self.message_user(request, f"Quota changed for {changed} user(s).", messages.SUCCESS)
            return None
        return self._form_page(
            request, form, users=queryset, title="Set monthly quota", submit="Set quota", action="set_quota"
        )

    def _each(self, request, queryset, verb: str, change) -> None:
        changed, refused = 0, []
        for user in queryset:
            try:
                changed += bool(change(user))
            except ApplicationError as exc:
                refused.append(exc.message)
        self.message_user(request, f"{changed} user(s) {verb}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    def _form_page(self, request, form, *, users, title, submit, action=None, ledger=None):
        users = list(users)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            "users": users[:20],
            "user_count": len(users),
            "action": action,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "submit": submit,
            "ledger": ledger,
        }
        return TemplateResponse(request, "admin/backoffice/user_form_page.html", context)


def _credit_args(form) -> dict:
    data = form.cleaned_data
    return {"amount": data["amount"], "kind": data["kind"], "reason": data["reason"], "token": data["token"]}


def _comparable(value):
    """Form values as the audit log stores them: related objects as sorted ids."""
    if hasattr(value, "__iter__") and not isinstance(value, str):
        return sorted(getattr(item, "pk", item) for item in value)
    return value


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email", "prefix"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request) -> bool:
        return False
