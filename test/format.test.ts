import { describe, expect, test } from "bun:test";
import { count, int, noun, num } from "../src/base/format.ts";

describe("int", () => {
  test("thousands separators", () => {
    expect(int(0)).toBe("0");
    expect(int(999)).toBe("999");
    expect(int(49179)).toBe("49,179");
    expect(int(1234567)).toBe("1,234,567");
  });
});

describe("count", () => {
  test("singular for exactly one, plural otherwise", () => {
    expect(count(1, "step")).toBe("1 step");
    expect(count(0, "step")).toBe("0 steps");
    expect(count(2000, "step")).toBe("2,000 steps");
    expect(count(1, "token")).toBe("1 token");
    expect(count(2, "child", "children")).toBe("2 children");
    expect(noun(1, "epoch")).toBe("epoch");
    expect(noun(3, "epoch")).toBe("epochs");
  });
});

describe("num", () => {
  test("drops float noise", () => {
    expect(num(0.00030000000000000003)).toBe("0.0003");
    expect(num(3e-4 * 0.1)).toBe("3e-5");
    expect(num(0.0000010000000000000002)).toBe("1e-6");
    expect(num(0.1 + 0.2)).toBe("0.3");
  });
  test("plain numbers stay plain", () => {
    expect(num(0)).toBe("0");
    expect(num(-0)).toBe("0");
    expect(num(1)).toBe("1");
    expect(num(0.95)).toBe("0.95");
    expect(num(0.0001)).toBe("0.0001");
    expect(num(0.003)).toBe("0.003");
    expect(num(1e-8)).toBe("1e-8");
    expect(num(2.5e-5)).toBe("2.5e-5");
    expect(num(1234.5678)).toBe("1235");
    expect(num(-0.5)).toBe("-0.5");
  });
  test("about four significant digits, more on request", () => {
    expect(num(0.000298765)).toBe("0.0002988");
    expect(num(3.14159265, 6)).toBe("3.14159");
    expect(num(Number.NaN)).toBe("NaN");
    expect(num(Number.POSITIVE_INFINITY)).toBe("Infinity");
  });
});
