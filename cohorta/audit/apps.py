from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "cohorta.audit"
    label = "audit"
    verbose_name = "Audit log"
