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
  type AnnualRatios,
  type QuarterlyRatios,
  type FieldMeta,
  type FieldError,
  type ModelKind,
} from './fields.js';
export {
  createRiskEngine,
  compileModel,
  riskLevel,
  validateThresholds,
  DEFAULT_THRESHOLDS,
  CompiledModel,
  type RiskEngine,
  type RiskLevel,
  type RiskThresholds,
  type Explanation,
} from './engine.js';
export { ArtifactError, validateArtifact, type ModelArtifact } from './artifact.js';
export { importLightGbm, LightGbmImportError } from './lightgbm.js';
export { trainModel, evaluateModel, withReplacedGbm, type TrainReport, type ComponentName } from './train.js';
export { generateReferenceData, RATINGS, RATING_MIX, TARGET_DEFAULT_RATES } from './reference-data.js';
export { parseLabelledCsv, datasetToCsv, type Dataset } from './dataset.js';
export { auc, ks, brier, calibrationTable, type Metrics, type CalibrationRow } from './metrics.js';
export { computeDrift, psi, PSI_FLOOR, PSI_SIGNIFICANT, type DriftReport } from './drift.js';
export { backtest, type BacktestPrediction, type BacktestReport, type DefaultEvent } from './backtest.js';
