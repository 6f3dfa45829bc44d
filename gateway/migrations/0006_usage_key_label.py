from importlib import import_module

from django.db import migrations, models

# As in 0005: SQLite builds the table anew to add or drop a column, which drops the trigger
# that keeps the daily sums; it is made again after the column comes and after it goes.
BEFORE = import_module("gateway.migrations.0005_usage_price_variants")


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0005_usage_price_variants"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, BEFORE.sqlite_trigger_again),
        migrations.AddField(
            model_name="usagerecord",
            name="key_label",
            field=models.CharField(blank=True, db_default="", default="", max_length=40),
        ),
        migrations.RunPython(BEFORE.sqlite_trigger_again, migrations.RunPython.noop),
    ]
