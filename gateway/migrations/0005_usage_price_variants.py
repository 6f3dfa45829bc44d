from importlib import import_module

from django.db import migrations, models

# SQLite adds (and drops) a column by building the table anew, which drops the trigger that
# keeps the daily sums (0003, 0004): it is made again after the column comes and after it
# goes. PostgreSQL keeps its trigger.
BEFORE = import_module("gateway.migrations.0004_usage_web_searches")


def sqlite_trigger_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS gateway_usage_day_add")
        schema_editor.execute(BEFORE.SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0004_usage_web_searches"),
    ]

    operations = [
        # Backwards, this runs last, once the column is gone (SQLite before 3.35 builds the
        # table anew to drop one too).
        migrations.RunPython(migrations.RunPython.noop, sqlite_trigger_again),
        migrations.AddField(
            model_name="usagerecord",
            name="price_variants",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.RunPython(sqlite_trigger_again, migrations.RunPython.noop),
    ]
