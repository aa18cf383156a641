import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJwtPayload, msUntilRefresh, tokenExpiryMs } from "../src/js/jwt.js";
import { jwt } from "./helpers.mjs";

test("decodes the payload of a JWT, including non-ASCII claims", () => {
  const token = jwt({ sub: "7", username: "zoë", exp: 2000 });
  assert.deepEqual(decodeJwtPayload(token), { sub: "7", username: "zoë", exp: 2000 });
  assert.equal(tokenExpiryMs(token), 2_000_000);
});

test("rejects things that are not JWTs", () => {
  assert.equal(decodeJwtPayload("nope"), null);
  assert.equal(decodeJwtPayload("a.!!!.c"), null);
  assert.equal(decodeJwtPayload(null), null);
  assert.equal(tokenExpiryMs("a.b"), null);
});

test("refreshes a tenth of the lifetime before expiry, within 5-60 s", () => {
  const iat = 1_000_000;
  const fiveMinutes = jwt({ iat, exp: iat + 300 });
  assert.equal(msUntilRefresh(fiveMinutes, iat * 1000), 270_000);
  const oneHour = jwt({ iat, exp: iat + 3600 });
  assert.equal(msUntilRefresh(oneHour, iat * 1000), 3_540_000); // capped at 60 s margin
  const twentySeconds = jwt({ iat, exp: iat + 20 });
  assert.equal(msUntilRefresh(twentySeconds, iat * 1000), 15_000); // at least 5 s margin
});

test("an expired or unreadable token must be refreshed now", () => {
  assert.equal(msUntilRefresh(jwt({ iat: 1, exp: 100 }), 500_000), 0);
  assert.equal(msUntilRefresh("garbage", 0), 0);
});
