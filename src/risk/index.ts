/**
 * Public surface of the risk engine. Everything here is pure (no fs, env or network): artifacts
 * come in as parsed JSON, data sets as arrays; file handling lives in src/services/model-store.ts
 * and src/cli/model.ts.
 */
export {
  ANNUAL_FIELDS,
  QUARTERLY_FIELDS,
  ANNUAL_FIELD_NAMES,
  QUARTERLY_FIELD_NAMES,
  DECIMAL_10_6_MAX,
  fieldsOf,
  fieldNamesOf,
  roundTo6,
  validateRatios,
  type AnnualField,
  type QuarterlyField,
  type RatioField,
  type AnnualRatios,
  type QuarterlyRatios,
  type FieldMeta,
  type FieldError,
  type ModelKind,
  type ValidationResult,
} from './fields.js';
export {
  createRiskEngine,
  compileModel,
  riskLevel,
  scoreColumns,
  validateThresholds,
  DEFAULT_THRESHOLDS,
  CompiledModel,
  type RiskEngine,
  type RiskEngineOptions,
  type RiskLevel,
  type RiskThresholds,
  type AnnualPrediction,
  type QuarterlyPrediction,
  type PredictOptions,
  type Explanation,
  type Contribution,
  type ModelRef,
  type ModelSummary,
} from './engine.js';
export { ArtifactError, validateArtifact, type ModelArtifact, type GbmJson, type TreeJson } from './artifact.js';
export { importLightGbm, LightGbmImportError, type LightGbmImport } from './lightgbm.js';
export { trainModel, evaluateModel, fitBlend, withReplacedGbm, type TrainOptions, type TrainReport, type ComponentName } from './train.js';
export { generateReferenceData, RATINGS, RATING_MIX, TARGET_DEFAULT_RATES } from './reference-data.js';
export { parseLabelledCsv, datasetToCsv, subset, type Dataset } from './dataset.js';
export { computeMetrics, auc, ks, brier, calibrationTable, type Metrics, type CalibrationRow } from './metrics.js';
export { computeDrift, driftStatus, psi, PSI_FLOOR, PSI_MODERATE, PSI_SIGNIFICANT, type DriftReport, type DriftStatus, type FieldDrift } from './drift.js';
export { backtest, type BacktestPrediction, type BacktestReport, type BacktestVersion, type DefaultEvent, type GroupRow } from './backtest.js';
