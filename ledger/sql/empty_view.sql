-- A table with no parts yet: the right columns and types, no rows.
CREATE OR REPLACE VIEW {name} AS
SELECT {typed_nulls}
WHERE false;
