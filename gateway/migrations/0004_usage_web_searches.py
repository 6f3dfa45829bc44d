from importlib import import_module

from django.db import migrations, models

# The daily sums (migration 0003) now add up the web searches too: the trigger that keeps
# them is made anew with that column. SQLite adds a column by building the table anew, which
# drops the trigger, so there it is made again after the columns come (and after they go).
BEFORE = import_module("gateway.migrations.0003_usage_days")
SUMS = f"{BEFORE.SUMS}, web_searches"
ADD_TO_EXISTING = (
    f"{BEFORE.ADD_TO_EXISTING}, "
    "web_searches = gateway_usageday.web_searches + excluded.web_searches"
)
POSTGRES_SUMMED = BEFORE.POSTGRES_SUMMED.replace(
    "\n    FROM {source}", ", sum(web_searches)\n    FROM {source}", 1
)
assert "sum(web_searches)" in POSTGRES_SUMMED


def postgres_function(sums: str, summed: str, add_to_existing: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION gateway_usage_day_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- In key order: two batches adding to the same days lock them in the same order.
    INSERT INTO gateway_usageday ({BEFORE.KEY}, {sums})
    {summed.format(source="new_rows")} ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ({BEFORE.KEY}) DO UPDATE SET {add_to_existing};
    RETURN NULL;
END
$$;
"""


SQLITE_TRIGGER = f"""
CREATE TRIGGER gateway_usage_day_add AFTER INSERT ON gateway_usagerecord
BEGIN
    INSERT INTO gateway_usageday ({BEFORE.KEY}, {SUMS})
    VALUES ({BEFORE.SQLITE_ROW}, NEW.web_searches)
    ON CONFLICT ({BEFORE.KEY}) DO UPDATE SET {ADD_TO_EXISTING};
END
"""


def sum_searches(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres_function(SUMS, POSTGRES_SUMMED, ADD_TO_EXISTING))
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS gateway_usage_day_add")
        schema_editor.execute(SQLITE_TRIGGER)


def stop_summing_searches(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        before = postgres_function(BEFORE.SUMS, BEFORE.POSTGRES_SUMMED, BEFORE.ADD_TO_EXISTING)
        schema_editor.execute(before)
    elif vendor == "sqlite":  # made again once the columns are gone (the first operation)
        schema_editor.execute("DROP TRIGGER IF EXISTS gateway_usage_day_add")


def sqlite_trigger_as_before(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS gateway_usage_day_add")
        schema_editor.execute(BEFORE.SQLITE[0])


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0003_usage_days"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, sqlite_trigger_as_before),
        migrations.AddField(
            model_name="usagerecord",
            name="web_searches",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="usageday",
            name="web_searches",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(sum_searches, stop_summing_searches),
    ]
