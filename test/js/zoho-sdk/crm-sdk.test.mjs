// Drives the sandbox's Zoho CRM v8 fake with Zoho's own published Node SDK
// (@zohocrm/nodejs-sdk-8.0), a client nobody here wrote: every response
// must be parsed by the SDK into its typed model, and the values must be
// what the requests asked for. Run by sandbox/sdk_test.go
// (TestZohoCRMSDKAgainstSandbox), which starts the sandbox and sets:
//
//   SANDBOX_API_DOMAIN     the data center's API domain (http://127.0.0.1:port)
//   SANDBOX_ACCOUNTS_URL   its accounts server
//   SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN (a "crm" grant)
//
// The SDK is pointed at the sandbox through its own extension point: an
// Environment(url, accountsUrl, fileUploadUrl) instance, the class its
// USDataCenter.PRODUCTION() etc. return. Nothing in node_modules is patched.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

// node --test in test/js (TestNodeClients) discovers this file too; without
// a sandbox it is one skipped test and never loads the SDK.
const NEEDED = ["SANDBOX_API_DOMAIN", "SANDBOX_ACCOUNTS_URL", "SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "SANDBOX_REFRESH_TOKEN"];
const unset = NEEDED.filter((n) => !process.env[n]);
const SKIP = unset.length > 0
  ? `needs a running sandbox (${unset.join(", ")} unset): go test -run TestZohoCRMSDKAgainstSandbox ./sandbox/`
  : false;
if (SKIP) test("Zoho CRM Node SDK against the sandbox", { skip: SKIP }, () => {});
const it = SKIP ? () => {} : test;
const Z = SKIP ? null : await import("@zohocrm/nodejs-sdk-8.0");

const { RecordOperations, GetRecordsParam, GetRecordsHeader, GetRecordParam, SearchRecordsParam,
  GetDeletedRecordsParam, DeleteRecordsParam, RecordCountParam } = Z?.Record ?? {};

const trim = (u) => (u ?? "").replace(/\/+$/, "");
const API_DOMAIN = trim(process.env.SANDBOX_API_DOMAIN);
const ACCOUNTS_URL = trim(process.env.SANDBOX_ACCOUNTS_URL);
const CLIENT_ID = process.env.SANDBOX_CLIENT_ID;
const CLIENT_SECRET = process.env.SANDBOX_CLIENT_SECRET;
const REFRESH_TOKEN = process.env.SANDBOX_REFRESH_TOKEN;

// A run-unique tag so reruns against one sandbox never collide.
const RUN = Date.now().toString(36);
const LAST_NAME = `Sdkprobe${RUN}`;
const email = (n) => `sdk.${RUN}.${n}@probe.example`;

let dir;
let token;
const contacts = SKIP ? null : new RecordOperations("Contacts");
// What the tests learn and hand on, in file order.
const state = { created: [], existingEmail: null, startedAt: null };

// ---------------------------------------------------------------- helpers

/**
 * The object an APIResponse carries, asserting its HTTP status and class,
 * and checking the raw JSON against the SDK's own type spec (pack names
 * the handler under core/com/zoho/crm/api/, module the records' module).
 */
function objectOf(resp, status, cls, what, pack, module = "Contacts") {
  assert.ok(resp, `${what}: the SDK returned no APIResponse`);
  const obj = resp.getObject();
  const raw = JSON.stringify(resp.getResponseJSON() ?? null);
  assert.equal(resp.getStatusCode(), status, `${what}: HTTP ${resp.getStatusCode()}, body ${raw}`);
  if (cls) {
    assert.ok(obj instanceof cls,
      `${what}: the SDK parsed the body into ${obj?.constructor?.name ?? obj}, want ${cls.name}; body ${raw}`);
  }
  if (pack) conforms(resp.getResponseJSON(), `core/com/zoho/crm/api/${pack}`, module, what);
  return obj;
}

// ------------------------------------------------ wire-format conformance
//
// The SDK's converters coerce silently (Boolean("false") is true, new
// Date("junk") is an Invalid Date, parseInt("7") is 7), so a response can
// "parse" and still disagree with Zoho's format. conforms walks the raw
// JSON against the SDK's own spec, lib/config/json_details.json (loaded as
// Initializer.jsonDetails), and the field types the SDK cached from
// /settings/fields; every disagreement fails the test. Values of the SDK's
// enumerated Choice members that are outside its enumeration are only
// reported as diagnostics (Zoho's enumerations are not exhaustive).

const DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)$/;
const DATE = /^\d{4}-\d\d-\d\d$/;
const choiceNotes = new Set();

function fieldCache() {
  const res = join(dir, "resources");
  const out = {};
  if (!existsSync(res)) return out;
  for (const f of readdirSync(res)) Object.assign(out, JSON.parse(readFileSync(join(res, f), "utf8")));
  return out;
}

function conforms(json, pack, module, what) {
  const problems = [];
  if (json != null) checkStruct(json, pack, module, "$", problems);
  // One line per kind of disagreement: "$.fields[3].unique" and
  // "$.fields[9].unique" are the same finding.
  const kinds = new Map();
  for (const p of problems) {
    const key = p.replace(/\[\d+\]/g, "[]").replace(/: .* \((\w+)\), /, ": <$1>, ");
    const k = kinds.get(key) ?? { first: p, n: 0 };
    k.n++;
    kinds.set(key, k);
  }
  const lines = [...kinds.values()].map(({ first, n }) => (n > 1 ? `${first} (and ${n - 1} more like it)` : first));
  assert.deepEqual(lines, [], `${what}: the wire format disagrees with the SDK's spec:\n  ${lines.join("\n  ")}`);
}

function checkStruct(json, pack, module, path, problems) {
  const details = Z.Initializer.jsonDetails;
  let cls = details[pack];
  if (!cls) return problems.push(`${path}: no SDK class ${pack}`);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return problems.push(`${path}: ${JSON.stringify(json)} (${Array.isArray(json) ? "array" : typeof json}), the SDK's spec wants an object (${pack})`);
  }
  if (cls.interface) {
    // Pick the implementation as a reader would: an error body is the
    // exception class, otherwise the class declaring most of the keys.
    const names = (p) => new Set(Object.values(details[p]).map((m) => m?.name).filter(Boolean));
    let best = null, score = -1;
    for (const c of cls.classes) {
      if (json.status === "error" && !c.endsWith("api_exception")) continue;
      if (json.status !== "error" && c.endsWith("api_exception")) continue;
      const n = [...names(c)].filter((k) => k in json).length;
      if (n > score) [best, score] = [c, n];
    }
    if (!best) return problems.push(`${path}: no ${pack} implementation fits ${JSON.stringify(json)}`);
    pack = best;
    cls = details[pack];
  }
  if (pack === "core/com/zoho/crm/api/record/record") return checkRecord(json, module, path, problems);
  for (const member of Object.values(cls)) {
    const name = member?.name;
    if (!name || !(name in json) || json[name] === null) continue;
    checkValue(json[name], member, module, `${path}.${name}`, problems);
  }
}

function checkRecord(json, module, path, problems) {
  const recordCls = Z.Initializer.jsonDetails["core/com/zoho/crm/api/record/record"];
  const fields = module ? (fieldCache()[module.toLowerCase()] ?? {}) : {};
  const byName = {};
  for (const m of Object.values(recordCls)) byName[m.name] = m;
  for (const [k, v] of Object.entries(fields)) byName[k] = v;
  for (const [key, value] of Object.entries(json)) {
    if (value === null || key.startsWith("$")) continue;
    const member = byName[key];
    if (member) checkValue(value, member, member.module ?? null, `${path}.${key}`, problems);
  }
}

function checkValue(v, member, module, path, problems) {
  const type = String(member.type);
  const bad = (want) => problems.push(`${path}: ${JSON.stringify(v)} (${Array.isArray(v) ? "array" : typeof v}), the SDK's spec wants ${want}`);
  switch (type) {
    case "String":
      if (typeof v !== "string") bad("a string");
      return;
    case "Integer":
      if (!Number.isInteger(v)) bad("an integer number");
      return;
    case "Long":
      if (typeof v === "number" ? !Number.isSafeInteger(v) : !(typeof v === "string" && /^-?\d+$/.test(v))) {
        bad("a long: a numeric string (or a safe integer)");
      }
      return;
    case "Double":
      if (typeof v !== "number") bad("a number");
      return;
    case "Boolean":
      if (typeof v !== "boolean") bad("a boolean");
      return;
    case "DateTime":
      if (typeof v !== "string" || !DATETIME.test(v)) bad("an ISO-8601 date-time with offset (yyyy-MM-ddTHH:mm:ss±hh:mm)");
      return;
    case "Date":
      if (typeof v !== "string" || !DATE.test(v)) bad("a date yyyy-MM-dd");
      return;
    case "Object":
      return;
    case "utils/util/choice":
      if (v !== null && typeof v === "object") return bad("a choice value (string, number or boolean)");
      if (Array.isArray(member.values) && !member.values.includes(v)) {
        const shown = member.values.length <= 6 ? ` ${JSON.stringify(member.values)}` : ` (${member.values.length} of them)`;
        choiceNotes.add(`${path.replace(/\[\d+\]/g, "[]")}: ${JSON.stringify(v)} is not among the SDK's enumerated values${shown}`);
      }
      return;
    case "List": {
      if (!Array.isArray(v)) return bad("an array");
      const struct = member.structure_name;
      const sub = member.sub_type?.type;
      v.forEach((item, i) => {
        const p = `${path}[${i}]`;
        if (item === null) return;
        if (struct) checkValue(item, { type: struct, values: member.values }, module, p, problems);
        else if (sub) checkValue(item, { type: sub }, module, p, problems);
      });
      return;
    }
    case "Map": {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return bad("an object");
      for (const key of member.keys ?? []) {
        if (key.name in v && v[key.name] !== null) checkValue(v[key.name], key, module, `${path}.${key.name}`, problems);
      }
      return;
    }
    default:
      if (type.startsWith("core/")) return checkStruct(v, type, module, path, problems);
  }
}

const choice = (c) => (c instanceof Z.Choice ? c.getValue() : c);

/** Asserts one ActionResponse element is a SuccessResponse and returns its details map. */
function success(item, what, SuccessResponse = Z.Record.SuccessResponse) {
  assert.ok(item instanceof SuccessResponse,
    `${what}: got ${item?.constructor?.name} ${describe(item)}, want SuccessResponse`);
  assert.equal(choice(item.getStatus()), "success", `${what}: status`);
  assert.equal(choice(item.getCode()), "SUCCESS", `${what}: code`);
  const details = item.getDetails();
  assert.ok(details instanceof Map, `${what}: details parsed into ${details?.constructor?.name}, want Map`);
  return details;
}

/** Asserts one ActionResponse element is an APIException with the code. */
function failure(item, code, what, APIException = Z.Record.APIException) {
  assert.ok(item instanceof APIException,
    `${what}: got ${item?.constructor?.name} ${describe(item)}, want APIException ${code}`);
  assert.equal(choice(item.getStatus()), "error", `${what}: status`);
  assert.equal(choice(item.getCode()), code, `${what}: code (message ${choice(item.getMessage())})`);
  assert.equal(typeof choice(item.getMessage()), "string", `${what}: message`);
  const details = item.getDetails();
  assert.ok(details instanceof Map, `${what}: details parsed into ${details?.constructor?.name}, want Map`);
  return details;
}

function describe(item) {
  if (item == null) return String(item);
  const out = {};
  for (const k of ["status", "code", "message", "details"]) {
    const v = item[k];
    out[k] = v instanceof Z.Choice ? v.getValue() : v instanceof Map ? Object.fromEntries(v) : v;
  }
  return JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}

/** The raw JSON ids of a response's data array, to check the wire type. */
function rawIDs(resp, key = "data") {
  const json = resp.getResponseJSON();
  return (json?.[key] ?? []).map((r) => r.id ?? r.details?.id);
}

function assertID(v, what) {
  assert.equal(typeof v, "bigint", `${what}: the SDK's Long id parsed as ${typeof v} (${v})`);
  assert.ok(v > 0n, `${what}: id ${v}`);
}

function contact(fields) {
  const r = new Z.Record.Record();
  for (const [k, v] of Object.entries(fields)) r.addKeyValue(k, v);
  return r;
}

async function params(...pairs) {
  const pm = new Z.ParameterMap();
  for (const [p, v] of pairs) await pm.add(p, v);
  return pm;
}

// ------------------------------------------------------------------ setup

before(async () => {
  if (SKIP) return;
  dir = mkdtempSync(join(tmpdir(), "deskbridge-zoho-sdk-"));
  // The SDK's Environment carries the API base URL, the full token URL
  // (its DataCenter classes give https://accounts.zoho.com/oauth/v2/token)
  // and the file-upload URL.
  const environment = new Z.Environment(API_DOMAIN, `${ACCOUNTS_URL}/oauth/v2/token`, API_DOMAIN);
  token = new Z.OAuthBuilder().clientId(CLIENT_ID).clientSecret(CLIENT_SECRET).refreshToken(REFRESH_TOKEN).build();
  const logger = new Z.LogBuilder().level(Z.Levels.ERROR).filePath(join(dir, "sdk-errors.log")).build();
  const builder = await new Z.InitializeBuilder();
  await builder
    .environment(environment)
    .token(token)
    .store(new Z.FileStore(join(dir, "tokens.csv")))
    .SDKConfig(new Z.SDKConfigBuilder().autoRefreshFields(false).pickListValidation(true).timeout(20000).build())
    .resourcePath(dir)
    .logger(logger)
    .initialize();
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ tests

it("the SDK refreshes its access token at the sandbox's accounts URL and identifies the user", async () => {
  const access = token.getAccessToken();
  assert.equal(typeof access, "string");
  assert.ok(access.length > 10, `access token ${access}`);
  assert.notEqual(access, REFRESH_TOKEN);
  assert.ok(Number(token.getExpiresIn()) > Date.now(), `expiry ${token.getExpiresIn()}`);
  // api_domain from the token answer, kept because it names no Zoho data
  // center (DataCenter.get returns null for it).
  assert.equal(token.getAPIDomain(), API_DOMAIN);
  // After refreshing, the SDK calls GET /crm/v8/users?type=CurrentUser and
  // GET /crm/v8/org and names the user "email:zgid"; a parse failure there
  // is only logged, so check its result.
  const sig = token.getUserSignature();
  assert.ok(sig, "the SDK could not read the current user and org (users?type=CurrentUser, org)");
  assert.match(sig.getName(), /^[^@\s]+@[^:\s]+:\d+$/, `user signature ${sig.getName()}`);
  const store = readFileSync(join(dir, "tokens.csv"), "utf8");
  assert.ok(store.includes(access), "FileStore saved the refreshed token");
});

it("UsersOperations.getUsers(type=CurrentUser) and OrgOperations.getOrganization parse", async () => {
  const uresp = await new Z.Users.UsersOperations().getUsers(
    await params([Z.Users.GetUsersParam.TYPE, "CurrentUser"]));
  const users = objectOf(uresp, 200, Z.Users.ResponseWrapper, "GET /users?type=CurrentUser", "users/response_handler").getUsers();
  assert.equal(users.length, 1);
  assertID(users[0].getId(), "user id");
  const [emailPart, zgid] = token.getUserSignature().getName().split(":");
  assert.equal(users[0].getEmail(), emailPart);

  const oresp = await new Z.Org.OrgOperations().getOrganization();
  const orgs = objectOf(oresp, 200, Z.Org.ResponseWrapper, "GET /org", "org/response_handler").getOrg();
  assert.ok(orgs.length >= 1);
  // The SDK models the org id as a String (TString), unlike record ids.
  assert.match(orgs[0].getId(), /^\d+$/, "org id");
  assert.equal(String(orgs[0].getZgid()), zgid);
  assert.equal(typeof orgs[0].getCompanyName(), "string");
});

it("FieldsOperations.getFields(module=Contacts) parses the field metadata", async () => {
  const resp = await new Z.Fields.FieldsOperations().getFields(
    await params([Z.Fields.GetFieldsParam.MODULE, "Contacts"]));
  const fields = objectOf(resp, 200, Z.Fields.ResponseWrapper, "GET /settings/fields?module=Contacts", "fields/response_handler").getFields();
  assert.ok(fields.length > 5, `${fields.length} fields`);
  const by = new Map(fields.map((f) => [f.getAPIName(), f]));
  for (const f of fields) {
    assertID(f.getId(), `field ${f.getAPIName()} id`);
    assert.equal(typeof f.getDataType(), "string", `field ${f.getAPIName()} data_type`);
    assert.equal(typeof f.getDisplayLabel(), "string", `field ${f.getAPIName()} display_label`);
  }
  const last = by.get("Last_Name");
  assert.ok(last, "Last_Name is listed");
  assert.equal(last.getSystemMandatory(), true, "Last_Name is system_mandatory");
  assert.equal(last.getDataType(), "text");
  assert.equal(by.get("Email")?.getDataType(), "email");
  const acct = by.get("Account_Name");
  assert.equal(acct?.getDataType(), "lookup");
  assert.equal(acct.getLookup()?.getModule()?.getAPIName(), "Accounts", "Account_Name looks up Accounts");
  const picklists = fields.filter((f) => f.getDataType() === "picklist");
  assert.ok(picklists.length > 0, "Contacts has a picklist");
  for (const p of picklists) {
    const values = p.getPickListValues();
    assert.ok(Array.isArray(values) && values.length > 0, `${p.getAPIName()} pick_list_values`);
    for (const v of values) {
      assert.equal(typeof v.getDisplayValue(), "string");
      assert.equal(typeof v.getActualValue(), "string");
    }
  }
});

it("RecordOperations.getRecords pages Contacts with fields, page/per_page and page_token", async () => {
  const fields = "Last_Name,First_Name,Email,Account_Name,Owner,Modified_Time";
  const resp1 = await contacts.getRecords(await params(
    [GetRecordsParam.FIELDS, fields], [GetRecordsParam.PAGE, 1], [GetRecordsParam.PER_PAGE, 5]));
  const page1 = objectOf(resp1, 200, Z.Record.ResponseWrapper, "GET /Contacts page 1", "record/response_handler");
  const data1 = page1.getData();
  assert.equal(data1.length, 5);
  for (const id of rawIDs(resp1)) assert.equal(typeof id, "string", `wire id ${id} is a JSON string`);
  const info1 = page1.getInfo();
  assert.ok(info1 instanceof Z.Record.Info, "info parsed into Info");
  assert.equal(info1.getPerPage(), 5);
  assert.equal(info1.getCount(), 5);
  assert.equal(info1.getPage(), 1);
  assert.equal(info1.getMoreRecords(), true);
  for (const r of data1) {
    assert.ok(r instanceof Z.Record.Record);
    assertID(r.getId(), "contact id");
    assert.equal(typeof r.getKeyValue("Last_Name"), "string");
    assert.ok(r.getKeyValue("Modified_Time") instanceof Date, "Modified_Time parsed into a Date");
    assert.ok(!Number.isNaN(r.getKeyValue("Modified_Time").getTime()), "Modified_Time is a valid time");
    const owner = r.getKeyValue("Owner");
    assert.ok(owner instanceof Z.Users.MinifiedUser, `Owner parsed into ${owner?.constructor?.name}`);
    assertID(owner.getId(), "owner id");
    const acct = r.getKeyValue("Account_Name");
    if (acct != null) {
      assert.ok(acct instanceof Z.Record.Record, `Account_Name parsed into ${acct?.constructor?.name}`);
      assertID(acct.getId(), "Account_Name id");
      assert.equal(typeof acct.getKeyValue("name"), "string");
    }
    // Only what was asked for (plus id).
    for (const k of r.getKeyValues().keys()) {
      assert.ok(k === "id" || fields.split(",").includes(k), `unrequested field ${k} in the answer`);
    }
  }

  const resp2 = await contacts.getRecords(await params(
    [GetRecordsParam.FIELDS, fields], [GetRecordsParam.PAGE, 2], [GetRecordsParam.PER_PAGE, 5]));
  const page2 = objectOf(resp2, 200, Z.Record.ResponseWrapper, "GET /Contacts page 2", "record/response_handler");
  assert.equal(page2.getInfo().getPage(), 2);
  assert.equal(page2.getData().length, 5);
  const ids1 = new Set(data1.map((r) => r.getId()));
  for (const r of page2.getData()) assert.ok(!ids1.has(r.getId()), `page 2 repeats ${r.getId()}`);

  // Keyset paging with the token the SDK parsed into Info.
  const next = info1.getNextPageToken();
  assert.equal(typeof next, "string", "next_page_token");
  const resp3 = await contacts.getRecords(await params(
    [GetRecordsParam.FIELDS, fields], [GetRecordsParam.PER_PAGE, 5], [GetRecordsParam.PAGE_TOKEN, next]));
  const page3 = objectOf(resp3, 200, Z.Record.ResponseWrapper, "GET /Contacts page_token", "record/response_handler");
  assert.deepEqual(page3.getData().map((r) => r.getId()), page2.getData().map((r) => r.getId()),
    "page_token after page 1 gives what page 2 gave");
});

it("RecordOperations.createRecords: a mixed batch gives SuccessResponse and APIException per record", async () => {
  // A seeded contact's email, for the DUPLICATE_DATA case.
  const seeded = await contacts.getRecords(await params([GetRecordsParam.FIELDS, "Email"], [GetRecordsParam.PER_PAGE, 200]));
  state.existingEmail = objectOf(seeded, 200, Z.Record.ResponseWrapper, "GET /Contacts?fields=Email", "record/response_handler")
    .getData().map((r) => r.getKeyValue("Email")).find((e) => typeof e === "string" && e.includes("@"));
  assert.ok(state.existingEmail, "a seeded contact has an email");
  state.startedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 2000);
  const bad = new Z.Record.Record();
  bad.setId(9999999999999999999n);
  const body = new Z.Record.BodyWrapper();
  body.setData([
    contact({ Last_Name: LAST_NAME, First_Name: "Ada", Email: email(1), Lead_Source: new Z.Choice("Partner"), Loyalty_Points__c: 7 }),
    contact({ First_Name: "Nolast", Email: email(2) }), // no Last_Name
    contact({ Last_Name: LAST_NAME, First_Name: "Dup", Email: state.existingEmail }),
    contact({ Last_Name: LAST_NAME, First_Name: "Badlookup", Email: email(4), Account_Name: bad }),
    contact({ Last_Name: LAST_NAME, First_Name: "Bea", Email: email(5), Date_of_Birth: new Date(Date.UTC(1990, 4, 17)) }),
  ]);
  const resp = await contacts.createRecords(body);
  const wrapper = objectOf(resp, 207, Z.Record.ActionWrapper, "POST /Contacts (mixed)", "record/action_handler");
  const items = wrapper.getData();
  assert.equal(items.length, 5, "one result per input record");

  for (const i of [0, 4]) {
    const d = success(items[i], `record ${i}`);
    assert.equal(choice(items[i].getMessage()), "record added");
    const id = d.get("id");
    assert.equal(typeof id, "string", `details.id is a string on the wire (${typeof id})`);
    assert.match(id, /^\d{15,19}$/);
    assert.ok(d.get("Created_Time") instanceof Date, "details.Created_Time parsed into a Date");
    assert.ok(d.get("Modified_Time") instanceof Date, "details.Modified_Time parsed into a Date");
    assert.ok(d.get("Created_By") instanceof Z.Users.MinifiedUser, "details.Created_By parsed into a MinifiedUser");
    assertID(d.get("Created_By").getId(), "Created_By id");
    state.created.push(BigInt(id));
  }
  const d1 = failure(items[1], "MANDATORY_NOT_FOUND", "record 1 (no Last_Name)");
  assert.equal(d1.get("api_name"), "Last_Name");
  const d2 = failure(items[2], "DUPLICATE_DATA", "record 2 (existing email)");
  assert.equal(d2.get("api_name"), "Email");
  const dup = d2.get("duplicate_record");
  assert.ok(dup, "DUPLICATE_DATA details.duplicate_record");
  assert.ok(dup instanceof Z.Record.DuplicateRecord, `duplicate_record parsed into ${dup?.constructor?.name}`);
  assertID(dup.getId(), "duplicate_record id");
  const d3 = failure(items[3], "INVALID_DATA", "record 3 (unknown Account_Name id)");
  assert.equal(d3.get("api_name"), "Account_Name");

  // Created records read back, through the SDK's typed Record.
  const got = await contacts.getRecord(state.created[0], await params(
    [GetRecordParam.FIELDS, "Last_Name,First_Name,Email,Lead_Source,Loyalty_Points__c,Date_of_Birth"]));
  const rec = objectOf(got, 200, Z.Record.ResponseWrapper, "GET /Contacts/{id}", "record/response_handler").getData();
  assert.equal(rec.length, 1);
  assert.equal(rec[0].getId(), state.created[0]);
  assert.equal(rec[0].getKeyValue("Last_Name"), LAST_NAME);
  assert.equal(rec[0].getKeyValue("Email"), email(1));
  const ls = rec[0].getKeyValue("Lead_Source");
  assert.ok(ls instanceof Z.Choice, `Lead_Source parsed into ${ls?.constructor?.name}`);
  assert.equal(ls.getValue(), "Partner");
  assert.equal(rec[0].getKeyValue("Loyalty_Points__c"), 7);

  const got2 = await contacts.getRecord(state.created[1], await params([GetRecordParam.FIELDS, "Date_of_Birth"]));
  const dob = objectOf(got2, 200, Z.Record.ResponseWrapper, "GET /Contacts/{id} (date)", "record/response_handler").getData()[0].getKeyValue("Date_of_Birth");
  assert.ok(dob instanceof Date, `Date_of_Birth parsed into ${dob?.constructor?.name}`);
  assert.equal(dob.toISOString().slice(0, 10), "1990-05-17");
});

it("RecordOperations.getRecord of an unknown id is an APIException", async () => {
  const resp = await contacts.getRecord(1234567890123456789n);
  conforms(resp.getResponseJSON(), "core/com/zoho/crm/api/record/response_handler", "Contacts", "GET /Contacts/{unknown}");
  const obj = resp.getObject();
  assert.ok([400, 404].includes(resp.getStatusCode()), `HTTP ${resp.getStatusCode()}`);
  assert.ok(obj instanceof Z.Record.APIException, `parsed into ${obj?.constructor?.name}: ${JSON.stringify(resp.getResponseJSON())}`);
  assert.equal(choice(obj.getStatus()), "error");
  assert.equal(typeof choice(obj.getCode()), "string");
});

it("RecordOperations.updateRecords and updateRecord", async () => {
  assert.equal(state.created.length, 2);
  const r = contact({ Title: "Probe lead", Loyalty_Points__c: 42 });
  r.setId(state.created[0]);
  const body = new Z.Record.BodyWrapper();
  body.setData([r]);
  const resp = await contacts.updateRecords(body);
  const items = objectOf(resp, 200, Z.Record.ActionWrapper, "PUT /Contacts", "record/action_handler").getData();
  assert.equal(items.length, 1);
  const d = success(items[0], "update");
  assert.equal(choice(items[0].getMessage()), "record updated");
  assert.equal(d.get("id"), state.created[0].toString());
  assert.ok(d.get("Modified_Time") instanceof Date);

  const one = new Z.Record.BodyWrapper();
  one.setData([contact({ Department: "Probing" })]);
  const resp2 = await contacts.updateRecord(state.created[1], one);
  const items2 = objectOf(resp2, 200, Z.Record.ActionWrapper, "PUT /Contacts/{id}", "record/action_handler").getData();
  assert.equal(success(items2[0], "update one").get("id"), state.created[1].toString());

  // An update that breaks uniqueness fails per record.
  const clash = contact({ Email: email(1) });
  clash.setId(state.created[1]);
  const body3 = new Z.Record.BodyWrapper();
  body3.setData([clash]);
  const resp3 = await contacts.updateRecords(body3);
  const items3 = objectOf(resp3, 400, Z.Record.ActionWrapper, "PUT /Contacts (duplicate email)", "record/action_handler").getData();
  failure(items3[0], "DUPLICATE_DATA", "update to a taken email");

  const check = await contacts.getRecord(state.created[0], await params([GetRecordParam.FIELDS, "Title,Loyalty_Points__c"]));
  const rec = objectOf(check, 200, Z.Record.ResponseWrapper, "GET after update", "record/response_handler").getData()[0];
  assert.equal(rec.getKeyValue("Title"), "Probe lead");
  assert.equal(rec.getKeyValue("Loyalty_Points__c"), 42);
});

it("RecordOperations.upsertRecords with duplicate_check_fields", async () => {
  const body = new Z.Record.BodyWrapper();
  body.setData([
    contact({ Last_Name: LAST_NAME, Email: email(1), Mailing_City: "Upsertville" }), // matches created[0]
    contact({ Last_Name: LAST_NAME, First_Name: "Upserted", Email: email(6) }), // new
  ]);
  body.setDuplicateCheckFields(["Email"]);
  const resp = await contacts.upsertRecords(body);
  const items = objectOf(resp, 201, Z.Record.ActionWrapper, "POST /Contacts/upsert", "record/action_handler").getData();
  assert.equal(items.length, 2);
  const d0 = success(items[0], "upsert existing");
  assert.equal(choice(items[0].getAction()), "update");
  assert.equal(items[0].getDuplicateField(), "Email");
  assert.equal(choice(items[0].getMessage()), "record updated");
  assert.equal(d0.get("id"), state.created[0].toString());
  const d1 = success(items[1], "upsert new");
  assert.equal(choice(items[1].getAction()), "insert");
  assert.equal(choice(items[1].getMessage()), "record added");
  state.created.push(BigInt(d1.get("id")));
});

it("RecordOperations.searchRecords by email and by criteria, and recordCount", async () => {
  const byEmail = await contacts.searchRecords(await params(
    [SearchRecordsParam.EMAIL, email(1)], [SearchRecordsParam.FIELDS, "Last_Name,Email,Mailing_City"]));
  const hits = objectOf(byEmail, 200, Z.Record.ResponseWrapper, "GET /Contacts/search?email=", "record/response_handler").getData();
  assert.equal(hits.length, 1);
  assert.equal(hits[0].getId(), state.created[0]);
  assert.equal(hits[0].getKeyValue("Mailing_City"), "Upsertville");

  const byCriteria = await contacts.searchRecords(await params(
    [SearchRecordsParam.CRITERIA, `(Last_Name:equals:${LAST_NAME})`],
    [SearchRecordsParam.FIELDS, "Last_Name,Email"], [SearchRecordsParam.PER_PAGE, 200]));
  const found = objectOf(byCriteria, 200, Z.Record.ResponseWrapper, "GET /Contacts/search?criteria=", "record/response_handler");
  const ids = found.getData().map((r) => r.getId()).sort();
  assert.deepEqual(ids, [...state.created].sort(), "criteria finds exactly the created contacts");
  assert.equal(found.getInfo().getCount(), state.created.length);
  assert.equal(found.getInfo().getMoreRecords(), false);

  const none = await contacts.searchRecords(await params([SearchRecordsParam.EMAIL, email(999)]));
  assert.equal(none.getStatusCode(), 204, "no match is 204");
  assert.equal(none.getObject(), null);

  const count = await contacts.recordCount(await params([RecordCountParam.CRITERIA, `(Last_Name:equals:${LAST_NAME})`]));
  const cw = objectOf(count, 200, Z.Record.CountWrapper, "GET /Contacts/actions/count", "record/count_handler");
  assert.equal(BigInt(cw.getCount()), BigInt(state.created.length));
});

it("If-Modified-Since through GetRecordsHeader: 200 with the changed records, 304 when nothing changed", async () => {
  const changed = await contacts.getRecords(
    await params([GetRecordsParam.FIELDS, "Last_Name"], [GetRecordsParam.PER_PAGE, 200]),
    await (async () => { const h = new Z.HeaderMap(); await h.add(GetRecordsHeader.IF_MODIFIED_SINCE, state.startedAt); return h; })());
  const data = objectOf(changed, 200, Z.Record.ResponseWrapper, "GET /Contacts If-Modified-Since (past)", "record/response_handler").getData();
  const ids = new Set(data.map((r) => r.getId()));
  for (const id of state.created) assert.ok(ids.has(id), `created ${id} is modified since ${state.startedAt.toISOString()}`);

  const h = new Z.HeaderMap();
  await h.add(GetRecordsHeader.IF_MODIFIED_SINCE, new Date(Date.now() + 3600_000));
  const resp = await contacts.getRecords(await params([GetRecordsParam.FIELDS, "Last_Name"]), h);
  assert.equal(resp.getStatusCode(), 304, `HTTP ${resp.getStatusCode()}`);
  assert.equal(resp.getObject(), null, "a 304 carries no object");
});

it("RecordOperations.deleteRecord then getDeletedRecords lists it", async () => {
  const victim = state.created[state.created.length - 1];
  const resp = await contacts.deleteRecord(victim);
  const items = objectOf(resp, 200, Z.Record.ActionWrapper, "DELETE /Contacts/{id}", "record/action_handler").getData();
  const d = success(items[0], "delete");
  assert.equal(choice(items[0].getMessage()), "record deleted");
  assert.equal(d.get("id"), victim.toString());

  const many = await contacts.deleteRecords(await params([DeleteRecordsParam.IDS, `${victim},1234567890123456789`]));
  const mitems = objectOf(many, 400, Z.Record.ActionWrapper, "DELETE /Contacts?ids= (both gone)", "record/action_handler").getData();
  assert.equal(mitems.length, 2);
  for (const it of mitems) failure(it, "INVALID_DATA", "delete of a missing id");

  const del = await contacts.getDeletedRecords(await params(
    [GetDeletedRecordsParam.TYPE, "recycle"], [GetDeletedRecordsParam.PER_PAGE, 200]));
  const wrapper = objectOf(del, 200, Z.Record.DeletedRecordsWrapper, "GET /Contacts/deleted?type=recycle", "record/deleted_records_handler");
  const rows = wrapper.getData();
  for (const id of rawIDs(del)) assert.equal(typeof id, "string", `wire id ${id} is a JSON string`);
  const row = rows.find((r) => r.getId() === victim);
  assert.ok(row, `deleted ${victim} is listed`);
  assert.ok(row instanceof Z.Record.DeletedRecord);
  assert.equal(row.getType(), "recycle");
  assert.ok(row.getDeletedTime() instanceof Date && !Number.isNaN(row.getDeletedTime().getTime()), "deleted_time");
  assert.ok(row.getDeletedBy() instanceof Z.Users.MinifiedUser, "deleted_by parsed into a MinifiedUser");
  assertID(row.getDeletedBy().getId(), "deleted_by id");
  assert.equal(typeof row.getDisplayName(), "string");
  assert.ok(wrapper.getInfo() instanceof Z.Record.Info);
  assert.equal(wrapper.getInfo().getCount(), rows.length);

  const gone = await contacts.getRecord(victim);
  assert.ok(gone.getObject() instanceof Z.Record.APIException || gone.getStatusCode() === 204,
    `reading a deleted record: HTTP ${gone.getStatusCode()} ${JSON.stringify(gone.getResponseJSON())}`);
});

it("NotificationsOperations: enable, list, update, receive a callback, delete", async (t) => {
  const received = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ url: req.url, body });
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const notifyUrl = `http://127.0.0.1:${server.address().port}/zoho/notify?run=${RUN}`;
  const channelId = String(1000000000 + (Date.now() % 1000000000));
  const N = Z.Notifications;
  const ops = new N.NotificationsOperations();
  // Status codes and texts Zoho documents, collected so that one run
  // names every disagreement; asserted at the end.
  const wire = [];

  const n = new N.Notification();
  n.setChannelId(channelId);
  n.setEvents(["Contacts.all"]);
  n.setNotifyUrl(notifyUrl);
  n.setToken(`tok-${RUN}`);
  n.setReturnAffectedFieldValues(true);
  n.setChannelExpiry(new Date(Date.now() + 3600_000));
  const body = new N.BodyWrapper();
  body.setWatch([n]);
  const resp = await ops.enableNotifications(body);
  // Zoho answers a subscription 201 Created: crm-oas v8.0/notifications.json
  // lists only 201 and 202 for POST /crm/v8/actions/watch (example
  // response-201-sample), as does Zoho's Postman collection.
  if (resp.getStatusCode() !== 201) {
    wire.push(`POST /crm/v8/actions/watch answered HTTP ${resp.getStatusCode()}; Zoho answers 201 Created`);
  }
  const items = objectOf(resp, resp.getStatusCode(), N.ActionWrapper, "POST /actions/watch", "notifications/action_handler").getWatch();
  assert.equal(items.length, 1);
  const d = success(items[0], "enable", N.SuccessResponse);
  assert.equal(choice(items[0].getMessage()), "Successfully subscribed for actions-watch of the given module");
  const events = d.get("events");
  assert.ok(Array.isArray(events) && events.length === 1, `details.events ${events}`);
  const ev = events[0];
  assert.ok(ev instanceof N.Event, `details.events[0] parsed into ${ev?.constructor?.name}`);
  assert.equal(String(ev.getChannelId()), channelId);
  assert.equal(ev.getResourceName(), "Contacts");
  assert.ok(ev.getChannelExpiry() instanceof Date && !Number.isNaN(ev.getChannelExpiry().getTime()), "channel_expiry");
  assertID(ev.getResourceId(), "resource_id");

  // PATCH adds an event to the channel.
  const more = new N.Notification();
  more.setChannelId(channelId);
  more.setEvents(["Accounts.create"]);
  const mb = new N.BodyWrapper();
  mb.setWatch([more]);
  const patched = await ops.updateNotification(mb);
  const pItems = objectOf(patched, 200, N.ActionWrapper, "PATCH /actions/watch", "notifications/action_handler").getWatch();
  success(pItems[0], "patch", N.SuccessResponse);
  assert.equal(choice(pItems[0].getMessage()), "Successfully updated the subscribe details");

  const list = await ops.getNotifications(await params([N.GetNotificationsParam.CHANNEL_ID, BigInt(channelId)]));
  const lw = objectOf(list, 200, N.ResponseWrapper, "GET /actions/watch", "notifications/response_handler");
  const watched = lw.getWatch();
  assert.deepEqual(watched.map((w) => w.getResourceName()).sort(), ["Accounts", "Contacts"], "one entry per module");
  const mine = watched.find((w) => w.getResourceName() === "Contacts");
  assert.ok(mine instanceof N.Notification, `parsed into ${mine?.constructor?.name}`);
  assert.equal(String(mine.getChannelId()), channelId);
  assert.deepEqual(mine.getEvents(), ["Contacts.all"]);
  assert.equal(mine.getNotifyUrl(), notifyUrl);
  assert.equal(mine.getToken(), `tok-${RUN}`);
  assert.equal(mine.getReturnAffectedFieldValues(), true);
  assert.ok(mine.getChannelExpiry() instanceof Date);
  assertID(mine.getResourceId(), "resource_id");
  assert.equal(lw.getInfo().getCount(), 2);

  // A change through the SDK reaches the notify URL.
  const upd = contact({ Title: "Notified" });
  upd.setId(state.created[0]);
  const ub = new Z.Record.BodyWrapper();
  ub.setData([upd]);
  success(objectOf(await contacts.updateRecords(ub), 200, Z.Record.ActionWrapper, "PUT for callback", "record/action_handler").getData()[0], "update");
  const deadline = Date.now() + 10_000;
  while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(received.length > 0, "the sandbox POSTed a callback within 10 s");
  const cb = JSON.parse(received[0].body);
  assert.equal(String(cb.channel_id), channelId);
  assert.equal(cb.module, "Contacts");
  assert.equal(cb.operation, "update");
  assert.deepEqual(cb.ids, [state.created[0].toString()]);
  assert.equal(cb.token, `tok-${RUN}`);
  assert.deepEqual(cb.query_params, { run: RUN });
  assert.equal(typeof cb.server_time, "number");
  assert.deepEqual(cb.affected_fields, [{ [state.created[0].toString()]: ["Title"] }]);

  const off = await ops.deleteNotification(await params([N.DeleteNotificationParam.CHANNEL_IDS, BigInt(channelId)]));
  const offItems = objectOf(off, 200, N.ActionWrapper, "DELETE /actions/watch", "notifications/action_handler").getWatch();
  assert.ok(offItems.length >= 1);
  for (const it of offItems) {
    const od = success(it, "delete", N.SuccessResponse);
    const ids = [od.get("channel_id"), ...(od.get("events") ?? []).map((e) => e.getChannelId?.())].filter((x) => x != null);
    assert.ok(ids.map(String).includes(channelId), "the answer names the channel");
    // Zoho's text, in its OAS message enum (crm-oas v8.0/notifications.json
    // Success_Response.message), its example and the SDK's
    // notifications/success_response choice values.
    const msg = choice(it.getMessage());
    if (msg !== "Successfully un-subscribed from actions-watch") {
      wire.push(`DELETE /crm/v8/actions/watch message ${JSON.stringify(msg)}; Zoho sends "Successfully un-subscribed from actions-watch"`);
    }
  }

  const after = await ops.getNotifications(await params([N.GetNotificationsParam.CHANNEL_ID, BigInt(channelId)]));
  assert.equal(after.getStatusCode(), 204, "no channel left");
  assert.deepEqual(wire, [], `the sandbox's watch API disagrees with Zoho's:\n  ${wire.join("\n  ")}`);
});

it("the SDK logged no errors while parsing the sandbox's answers", (t) => {
  for (const note of choiceNotes) t.diagnostic(`choice outside the SDK's enumeration: ${note}`);
  const log = join(dir, "sdk-errors.log");
  const text = existsSync(log) ? readFileSync(log, "utf8").trim() : "";
  assert.equal(text, "", `SDK error log:\n${text}`);
});
