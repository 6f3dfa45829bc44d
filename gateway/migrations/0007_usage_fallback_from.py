from importlib import import_module

from django.db import migrations, models

# As in 0005: SQLite builds the table anew to add or drop a column, which drops the trigger
# that keeps the daily sums; it is made again after the column comes and after it goes.
BEFORE = import_module("gateway.migrations.0005_usage_price_variants")


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0006_usage_key_label"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, BEFORE.sqlite_trigger_again),
        migrations.AddField(
            model_name="usagerecord",
            name="fallback_from",
            field=models.CharField(blank=True, db_default="", default="", max_length=300),
        ),
        migrations.RunPython(BEFORE.sqlite_trigger_again, migrations.RunPython.noop),
    ]
