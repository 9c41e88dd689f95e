-- accunode:no-transaction
-- The spec's "Query Optimization" indexes, built CONCURRENTLY so they can be added to a live
-- database without blocking writes. CONCURRENTLY cannot run inside a transaction, hence the
-- marker on the first line; the runner executes each statement on its own and drops an
-- INVALID leftover of an interrupted build before retrying it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_annual_predictions_company_year
ON annual_predictions(company_id, reporting_year);

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_quarterly_predictions_company_period
ON quarterly_predictions(company_id, reporting_year, reporting_quarter);

-- Partial indexes for active records
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_active
ON companies(organization_id) WHERE is_active = true;

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_active_verified
ON users(organization_id, role) WHERE is_active = true AND is_verified = true;

-- Composite index for analytics over shared (organization and system) predictions
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_predictions_analytics
ON annual_predictions(created_at, risk_level, probability)
WHERE access_level IN ('organization', 'system');

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_quarterly_predictions_analytics
ON quarterly_predictions(created_at, risk_level, ensemble_probability)
WHERE access_level IN ('organization', 'system');

-- Text search index on company names
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_name_search
ON companies USING gin(to_tsvector('english', name));
