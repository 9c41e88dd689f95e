-- Scale (issue 14): list pages are planned once per connection (generic plans, see
-- repositories/keyset.ts usePlans), so the planner estimates "scope_id = $1" as 1 / (distinct
-- scopes in the statistics). A tenant whose data sits in one organization has one distinct scope:
-- the estimate became "the whole table", every index that gives the page's order looked equally
-- good, and the planner took the narrower (name, id) or (created_at, id) index with the scope as a
-- filter. For the member's empty scopes (personal, shared) that filter read the entire table:
-- 2.2 s for a portfolio page at 10M predictions, 10,000 rows read for a company page at 5,000.
--
-- Scopes are many by design (one per user, one per organization, one shared), so the statistics
-- are told so: one distinct scope per 100 rows. Generic plans then estimate a scope at 1 % of the
-- table and walk the scope's own index; custom plans still use the real per-value frequencies.
-- test/foundation/explain-skew.test.ts holds every list, page and count to O(page) rows read.
ALTER TABLE companies ALTER COLUMN scope_id SET (n_distinct = -0.01);
ALTER TABLE annual_predictions ALTER COLUMN scope_id SET (n_distinct = -0.01);
ALTER TABLE quarterly_predictions ALTER COLUMN scope_id SET (n_distinct = -0.01);
ALTER TABLE company_latest ALTER COLUMN scope_id SET (n_distinct = -0.01);

-- Existing deployments: the statistics take the setting at their next ANALYZE; do it now.
ANALYZE companies (scope_id);
ANALYZE annual_predictions (scope_id);
ANALYZE quarterly_predictions (scope_id);
ANALYZE company_latest (scope_id);
