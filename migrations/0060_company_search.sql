-- Company search by prefix and part of a word (issue 17: "App", "For", "AA" found nothing).
-- pg_trgm (contrib) indexes every three-letter piece of a name, so '%app%' is an index lookup;
-- pattern-ops btrees serve prefixes shorter than three letters (symbols above all, "AA", "F").
-- app_company_matches keeps its shape and its cost: the number of matches, never the number of
-- companies, and it still returns only rows the caller may read.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX idx_companies_name_trgm ON companies USING gin (lower(name) gin_trgm_ops);
CREATE INDEX idx_companies_symbol_prefix ON companies (symbol varchar_pattern_ops);
CREATE INDEX idx_companies_name_prefix ON companies (lower(name) text_pattern_ops);

-- plpgsql with EXECUTE: the pattern reaches the planner as a literal, which a LIKE prefix needs to
-- become an index range (a cached generic plan with a parameter would scan).
CREATE OR REPLACE FUNCTION app_company_matches(q text) RETURNS SETOF uuid LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  t text := btrim(coalesce(q, ''));
  esc text;
BEGIN
  IF t = '' THEN RETURN; END IF;
  esc := replace(replace(replace(lower(t), '\', '\\'), '%', '\%'), '_', '\_');
  RETURN QUERY EXECUTE format($q$
    SELECT c.id FROM public.companies c
    WHERE (to_tsvector('english', c.name) @@ websearch_to_tsquery('english', %1$L)
           OR c.symbol LIKE %2$L
           OR %3$s)
      AND (c.access_level = ANY (public.app_open_levels())
           OR (c.created_by = public.app_uid() AND c.access_level = 'personal')
           OR (c.organization_id = ANY (public.app_readable_orgs()) AND c.access_level = 'organization'))
  $q$, t, upper(esc) || '%',
    CASE WHEN length(t) >= 3 THEN format('lower(c.name) LIKE %L', '%' || esc || '%')
         ELSE format('lower(c.name) LIKE %L', esc || '%') END);
END $$;
REVOKE ALL ON FUNCTION app_company_matches(text) FROM PUBLIC, analytics_user;
GRANT EXECUTE ON FUNCTION app_company_matches(text) TO app_user;
