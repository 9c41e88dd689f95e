import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The import rules that keep the folder map of docs/architecture.md true. Each rule has a name
// (shown in the lint message); a folder gets the union of the rules that apply to it, since a
// later `no-restricted-imports` block would replace an earlier one rather than add to it.
const RULES = {
  'composition-root': {
    group: ['**/entrypoints/*', '**/entrypoints/**'],
    message: '[composition-root] only src/entrypoints/ wires dependencies: take them as parameters (CLI commands: CliContext, jobs: JobDeps)',
  },
  'no-http-outside-http': {
    group: ['**/http/*', '**/http/**'],
    message: '[no-http-outside-http] a worker never loads the HTTP stack: only src/http/ and src/entrypoints/ import http/',
  },
  'sql-in-repositories': {
    paths: ['postgres'],
    message: '[sql-in-repositories] SQL lives in repositories/ (and ops/ diagnostics): http/, services/ and cli/ call them',
  },
  'pure-domain': {
    group: ['../*', '../**', 'node:*', 'postgres', 'ioredis', 'bullmq', 'fastify', 'fastify-*', '@fastify/*'],
    message: '[pure-domain] domain/ holds types, rules and errors and imports nothing else',
  },
  'pure-risk': {
    group: ['postgres', 'ioredis', 'bullmq', 'fastify', 'fastify-*', '@fastify/*', '**/db/*', '**/http/*', '**/cache/*', '**/queue/*', '**/repositories/*', '**/services/*', '**/ops/*'],
    message: '[pure-risk] risk/ is model code without I/O services: no database, Redis, queue or HTTP',
  },
};

const FOLDERS = {
  'src/cli': ['composition-root', 'no-http-outside-http', 'sql-in-repositories'],
  'src/services': ['composition-root', 'no-http-outside-http', 'sql-in-repositories'],
  'src/http': ['composition-root', 'sql-in-repositories'],
  'src/jobs': ['composition-root', 'no-http-outside-http'],
  'src/ops': ['composition-root', 'no-http-outside-http'],
  'src/repositories': ['composition-root', 'no-http-outside-http'],
  'src/db': ['composition-root', 'no-http-outside-http'],
  'src/cache': ['composition-root', 'no-http-outside-http'],
  'src/queue': ['composition-root', 'no-http-outside-http'],
  'src/redis': ['composition-root', 'no-http-outside-http'],
  'src/config': ['composition-root', 'no-http-outside-http'],
  'src/domain': ['pure-domain'],
  'src/risk': ['composition-root', 'no-http-outside-http', 'pure-risk'],
};

function importRules(names) {
  const paths = [];
  const patterns = [];
  for (const n of names) {
    const r = RULES[n];
    for (const p of r.paths ?? []) paths.push({ name: p, message: r.message });
    if (r.group) patterns.push({ group: r.group, message: r.message });
  }
  return { 'no-restricted-imports': ['error', { paths, patterns }] };
}

// The same rule for SQL written without importing postgres: a query on a pool or transaction
// handed in (sql`…`, tx`…`, deps.sql`…`, .unsafe(…)) belongs in repositories/ too.
const SQL_TAGS = '/^(sql|tx|t|adminSql|appSql|readSql|monitorSql|listenSql)$/';
const inlineSql = {
  'no-restricted-syntax': [
    'error',
    { selector: `TaggedTemplateExpression[tag.type='Identifier'][tag.name=${SQL_TAGS}]`, message: RULES['sql-in-repositories'].message },
    { selector: `TaggedTemplateExpression[tag.type='MemberExpression'][tag.property.name=${SQL_TAGS}]`, message: RULES['sql-in-repositories'].message },
    { selector: "CallExpression[callee.property.name='unsafe']", message: RULES['sql-in-repositories'].message },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/dist/**', '.accunode/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  ...Object.entries(FOLDERS).map(([dir, names]) => ({ files: [`${dir}/**/*.ts`], rules: { ...importRules(names), ...(names.includes('sql-in-repositories') ? inlineSql : {}) } })),
  {
    files: ['bin/**/*.js', 'scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
