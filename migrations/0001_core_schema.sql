-- Core tables of the infrastructure spec ("Database Schema Structure"), column for column,
-- with the deviations the foundation issue asks for. Each deviation is marked DEVIATION and
-- says why. gen_random_uuid() is built in since PostgreSQL 13 (no pgcrypto needed).

-- Roles exist before any GRANT can name them. They are created NOLOGIN here, without a
-- password: `accunode db roles` gives them LOGIN and a SCRAM verifier computed by the app,
-- so no migration file and no statement log ever holds a password.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['app_user', 'readonly_user', 'analytics_user', 'monitoring_user', 'maintenance_user'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

CREATE TABLE tenants (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    domain VARCHAR(255),
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE organizations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID REFERENCES tenants(id),
    name VARCHAR(255) NOT NULL,
    description TEXT,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    -- DEVIATION: the identity API's join flow (join token stored only as a hash, its expiry,
    -- and the member limit) lives on the organization it admits people to.
    join_token_hash TEXT UNIQUE,
    join_token_expires_at TIMESTAMP,
    max_members INTEGER NOT NULL DEFAULT 100 CHECK (max_members BETWEEN 1 AND 1000000)
);
CREATE INDEX idx_organizations_tenant_id ON organizations(tenant_id);

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID REFERENCES tenants(id),
    organization_id UUID REFERENCES organizations(id),
    email VARCHAR(255) UNIQUE NOT NULL,
    username VARCHAR(100) UNIQUE NOT NULL,
    first_name VARCHAR(100),
    last_name VARCHAR(100),
    role VARCHAR(50) NOT NULL,
    is_active BOOLEAN DEFAULT true,
    is_verified BOOLEAN DEFAULT false,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    -- CHECK the spec implies: the five roles of the access model.
    CONSTRAINT users_role_check CHECK (role IN ('user', 'org_member', 'org_admin', 'tenant_admin', 'super_admin')),
    -- An organization belongs to one tenant; a member's tenant is that tenant (enforced by trigger below).
    CONSTRAINT users_org_needs_tenant CHECK (organization_id IS NULL OR tenant_id IS NOT NULL)
);
CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_tenant_org ON users(tenant_id, organization_id);
-- DEVIATION: e-mail addresses are unique case-insensitively (Bob@x.com and bob@x.com are one
-- mailbox); the spec's case-sensitive UNIQUE stays as well.
CREATE UNIQUE INDEX idx_users_email_lower ON users(lower(email));
CREATE UNIQUE INDEX idx_users_username_lower ON users(lower(username));
CREATE INDEX idx_users_organization ON users(organization_id);

-- DEVIATION: password hashes are kept out of `users`, so the reporting roles (which the spec
-- grants SELECT on every table) can read users without ever seeing a credential.
CREATE TABLE user_credentials (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    password_changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE companies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID REFERENCES organizations(id),
    -- DEVIATION: no global UNIQUE on symbol. A symbol is unique within its scope (see the three
    -- partial unique indexes below): a global one would let one organization's private company
    -- block the same symbol for every other organization and for the system scope.
    symbol VARCHAR(10) NOT NULL,
    name VARCHAR(255) NOT NULL,
    market_cap BIGINT,
    sector VARCHAR(100),
    country VARCHAR(100),
    exchange VARCHAR(50),
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    -- DEVIATION: companies carry access_level and created_by like predictions, so a private
    -- (personal or organization) company is visible only in its scope.
    access_level VARCHAR(20) NOT NULL DEFAULT 'personal',
    created_by UUID REFERENCES users(id),
    CONSTRAINT companies_access_level_check CHECK (access_level IN ('personal', 'organization', 'system')),
    CONSTRAINT companies_scope_check CHECK (
        (access_level = 'organization' AND organization_id IS NOT NULL)
        OR (access_level = 'personal' AND created_by IS NOT NULL)
        OR access_level = 'system'),
    CONSTRAINT companies_symbol_format CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.\-]{0,9}$'),
    CONSTRAINT companies_market_cap_check CHECK (market_cap IS NULL OR market_cap >= 0)
);
CREATE INDEX idx_companies_symbol ON companies(symbol);
CREATE INDEX idx_companies_sector ON companies(sector);
CREATE INDEX idx_companies_org ON companies(organization_id);
CREATE UNIQUE INDEX uq_companies_symbol_system ON companies(symbol) WHERE access_level = 'system';
CREATE UNIQUE INDEX uq_companies_symbol_organization ON companies(organization_id, symbol) WHERE access_level = 'organization';
CREATE UNIQUE INDEX uq_companies_symbol_personal ON companies(created_by, symbol) WHERE access_level = 'personal';
CREATE INDEX idx_companies_created_by ON companies(created_by);
CREATE INDEX idx_companies_access_level ON companies(access_level);

CREATE TABLE annual_predictions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID REFERENCES companies(id),
    created_by UUID REFERENCES users(id),
    reporting_year VARCHAR(4) NOT NULL,

    -- Financial Ratios
    long_term_debt_to_total_capital DECIMAL(10,6),
    total_debt_to_ebitda DECIMAL(10,6),
    net_income_margin DECIMAL(10,6),
    ebit_to_interest_expense DECIMAL(10,6),
    return_on_assets DECIMAL(10,6),

    -- Prediction Results
    probability DECIMAL(10,6) NOT NULL,
    risk_level VARCHAR(10) NOT NULL,
    confidence DECIMAL(10,6),

    -- Model Details
    logistic_probability DECIMAL(10,6),
    step_probability DECIMAL(10,6),

    access_level VARCHAR(20) DEFAULT 'personal',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

    -- A prediction lives in its company's scope (access_level and organization_id are copied
    -- from the company by trigger), and a company belongs to exactly one scope, so this spec key
    -- means one prediction per company and year in each scope; no scope can block another.
    UNIQUE(company_id, reporting_year),

    -- DEVIATION: which model made the prediction.
    model_name VARCHAR(100),
    model_version VARCHAR(50),
    -- DEVIATION: the company's organization, copied so row-level security needs no join and
    -- a user's list query can use an index (see the RLS migration).
    organization_id UUID REFERENCES organizations(id),

    CONSTRAINT annual_predictions_risk_level_check CHECK (risk_level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    CONSTRAINT annual_predictions_access_level_check CHECK (access_level IN ('personal', 'organization', 'system')),
    CONSTRAINT annual_predictions_year_check CHECK (reporting_year ~ '^[0-9]{4}$'),
    CONSTRAINT annual_predictions_probability_check CHECK (probability BETWEEN 0 AND 1),
    CONSTRAINT annual_predictions_logistic_check CHECK (logistic_probability BETWEEN 0 AND 1),
    CONSTRAINT annual_predictions_step_check CHECK (step_probability BETWEEN 0 AND 1),
    CONSTRAINT annual_predictions_confidence_check CHECK (confidence BETWEEN 0 AND 1)
);
CREATE INDEX idx_annual_predictions_company ON annual_predictions(company_id);
CREATE INDEX idx_annual_predictions_year ON annual_predictions(reporting_year);
CREATE INDEX idx_annual_predictions_risk ON annual_predictions(risk_level);

CREATE TABLE quarterly_predictions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID REFERENCES companies(id),
    created_by UUID REFERENCES users(id),
    reporting_year VARCHAR(4) NOT NULL,
    reporting_quarter VARCHAR(2) NOT NULL,

    -- Financial Ratios
    current_ratio DECIMAL(10,6),
    quick_ratio DECIMAL(10,6),
    debt_to_equity DECIMAL(10,6),
    inventory_turnover DECIMAL(10,6),
    receivables_turnover DECIMAL(10,6),
    working_capital_to_total_assets DECIMAL(10,6),

    -- Prediction Results
    ensemble_probability DECIMAL(10,6) NOT NULL,
    logistic_probability DECIMAL(10,6),
    gbm_probability DECIMAL(10,6),
    step_probability DECIMAL(10,6),
    risk_level VARCHAR(10) NOT NULL,
    confidence DECIMAL(10,6),

    access_level VARCHAR(20) DEFAULT 'personal',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

    UNIQUE(company_id, reporting_year, reporting_quarter),

    model_name VARCHAR(100),
    model_version VARCHAR(50),
    organization_id UUID REFERENCES organizations(id),

    CONSTRAINT quarterly_predictions_risk_level_check CHECK (risk_level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    CONSTRAINT quarterly_predictions_access_level_check CHECK (access_level IN ('personal', 'organization', 'system')),
    CONSTRAINT quarterly_predictions_year_check CHECK (reporting_year ~ '^[0-9]{4}$'),
    CONSTRAINT quarterly_predictions_quarter_check CHECK (reporting_quarter IN ('Q1', 'Q2', 'Q3', 'Q4')),
    CONSTRAINT quarterly_predictions_ensemble_check CHECK (ensemble_probability BETWEEN 0 AND 1),
    CONSTRAINT quarterly_predictions_logistic_check CHECK (logistic_probability BETWEEN 0 AND 1),
    CONSTRAINT quarterly_predictions_gbm_check CHECK (gbm_probability BETWEEN 0 AND 1),
    CONSTRAINT quarterly_predictions_step_check CHECK (step_probability BETWEEN 0 AND 1),
    CONSTRAINT quarterly_predictions_confidence_check CHECK (confidence BETWEEN 0 AND 1)
);
CREATE INDEX idx_quarterly_predictions_company ON quarterly_predictions(company_id);
CREATE INDEX idx_quarterly_predictions_period ON quarterly_predictions(reporting_year, reporting_quarter);

-- Indexes row-level security needs: each arm of the read policy (system / own personal rows /
-- readable organizations) has its own index, so a user's list query is a BitmapOr of three
-- index scans instead of a sequential scan over every tenant's rows. The access-level index is
-- deliberately one column: time-range analytics over shared rows should take the spec's
-- partial analytics index (created_at, ...) rather than this one.
CREATE INDEX idx_annual_predictions_creator ON annual_predictions(created_by, created_at);
CREATE INDEX idx_annual_predictions_org ON annual_predictions(organization_id, created_at);
CREATE INDEX idx_annual_predictions_access_level ON annual_predictions(access_level);
CREATE INDEX idx_quarterly_predictions_creator ON quarterly_predictions(created_by, created_at);
CREATE INDEX idx_quarterly_predictions_org ON quarterly_predictions(organization_id, created_at);
CREATE INDEX idx_quarterly_predictions_access_level ON quarterly_predictions(access_level);

-- updated_at maintained by the database, whatever path wrote the row.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := CURRENT_TIMESTAMP;
  RETURN NEW;
END $$;

CREATE TRIGGER trg_tenants_updated_at BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_organizations_updated_at BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_companies_updated_at BEFORE UPDATE ON companies FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_annual_predictions_updated_at BEFORE UPDATE ON annual_predictions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_quarterly_predictions_updated_at BEFORE UPDATE ON quarterly_predictions FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A member's tenant is its organization's tenant; checked here so no write path can split them.
CREATE FUNCTION users_org_tenant_check() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE org_tenant uuid;
BEGIN
  IF NEW.organization_id IS NOT NULL THEN
    SELECT tenant_id INTO org_tenant FROM public.organizations WHERE id = NEW.organization_id;
    IF org_tenant IS DISTINCT FROM NEW.tenant_id THEN
      RAISE EXCEPTION 'user''s tenant must be the tenant of its organization' USING ERRCODE = '23514';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER trg_users_org_tenant BEFORE INSERT OR UPDATE OF tenant_id, organization_id ON users
  FOR EACH ROW EXECUTE FUNCTION users_org_tenant_check();

-- A prediction takes its scope from its company. The company is read as the caller (row-level
-- security applies), so nobody can attach a prediction to a company they cannot see.
CREATE FUNCTION prediction_scope_from_company() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE c record;
BEGIN
  SELECT access_level, organization_id INTO c FROM public.companies WHERE id = NEW.company_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'company % not found', NEW.company_id USING ERRCODE = '23503';
  END IF;
  NEW.access_level := c.access_level;
  NEW.organization_id := c.organization_id;
  RETURN NEW;
END $$;
CREATE TRIGGER trg_annual_predictions_scope BEFORE INSERT OR UPDATE OF company_id, access_level, organization_id
  ON annual_predictions FOR EACH ROW EXECUTE FUNCTION prediction_scope_from_company();
CREATE TRIGGER trg_quarterly_predictions_scope BEFORE INSERT OR UPDATE OF company_id, access_level, organization_id
  ON quarterly_predictions FOR EACH ROW EXECUTE FUNCTION prediction_scope_from_company();

-- When a company changes scope its predictions follow. The company update itself already
-- passed row-level security, so the follow-up runs as owner.
CREATE FUNCTION company_scope_cascade() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF NEW.access_level IS DISTINCT FROM OLD.access_level OR NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
    UPDATE public.annual_predictions SET access_level = NEW.access_level, organization_id = NEW.organization_id
      WHERE company_id = NEW.id;
    UPDATE public.quarterly_predictions SET access_level = NEW.access_level, organization_id = NEW.organization_id
      WHERE company_id = NEW.id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER trg_companies_scope_cascade AFTER UPDATE OF access_level, organization_id ON companies
  FOR EACH ROW EXECUTE FUNCTION company_scope_cascade();
