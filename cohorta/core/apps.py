from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from cohorta import read_cache


class CoreConfig(AppConfig):
    name = "cohorta.core"
    label = "core"
    verbose_name = "App settings"

    def ready(self) -> None:
        # Every connection reports its writes to the read cache; a migrate (each deploy's release step) makes
        # every cached response stale.
        connection_created.connect(read_cache.install, dispatch_uid="cohorta.read_cache.install")
        post_migrate.connect(read_cache.bump_epoch, sender=self, dispatch_uid="cohorta.read_cache.bump_epoch")
