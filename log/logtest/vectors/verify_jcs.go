package vectors

import (
	"strings"
)

func jcsCases() []VerifyCase {
	var cases []VerifyCase
	ok := func(name, why, in, canonical string) {
		cases = append(cases, VerifyCase{Name: name, Want: "ok", Why: why, Input: str(in), Canonical: str(canonical)})
	}
	fail := func(name, why, in string) {
		c := VerifyCase{Name: name, Want: "fail", Why: why}
		setBytes(&c.Input, &c.InputBase64, []byte(in))
		cases = append(cases, c)
	}

	// Key order: by UTF-16 code units, not by code points or UTF-8 bytes.
	ok("key order by UTF-16 code units", "U+1F600 (D83D DE00) sorts before U+FF61",
		`{"\uff61":0,"\ud83d\ude00":1,"\u20ac":2,"\u00e9":3,"a":4,"A":5,"":6,"aa":7}`,
		`{"":6,"A":5,"a":4,"aa":7,"é":3,"€":2,"😀":1,"｡":0}`)
	ok("RFC 8785 §3.2.3 sorting example", "",
		`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
		"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}")
	ok("astral keys against U+E000 and U+FFFF", "surrogates (D800-DFFF) sort below U+E000",
		`{"\uffff":0,"\ue000":1,"\ud800\udc00":2,"\udbff\udfff":3}`,
		"{\"\U00010000\":2,\"\U0010ffff\":3,\"\ue000\":1,\"\uffff\":0}")
	ok("nested objects sorted, arrays kept", "", `{"b":[3,1,2,{"z":1,"y":[]}],"a":{"d":{},"c":null}}`, `{"a":{"c":null,"d":{}},"b":[3,1,2,{"y":[],"z":1}]}`)
	ok("white space removed", "", " \t\r\n{ \"a\" : [ 1 , true , false , null ] }\n ", `{"a":[1,true,false,null]}`)
	ok("top-level string", "", `"a"`, `"a"`)
	ok("top-level number", "", `1e2`, `100`)
	ok("top-level null", "", `null`, `null`)
	ok("empty object", "", `{}`, `{}`)
	ok("empty array", "", `[]`, `[]`)
	ok("10,000 nested arrays", "the deepest nesting accepted", strings.Repeat("[", 10000)+strings.Repeat("]", 10000), strings.Repeat("[", 10000)+strings.Repeat("]", 10000))

	// Numbers: the shortest ECMAScript form of the nearest double.
	for _, c := range [][3]string{
		{"zero", "0", "0"},
		{"minus zero", "-0", "0"},
		{"minus zero with a fraction", "-0.0", "0"},
		{"an exponent of zero", "0e10", "0"},
		{"one with a fraction", "1.0", "1"},
		{"exponent form", "1E+3", "1000"},
		{"1e20", "1e20", "100000000000000000000"},
		{"1e21", "1e21", "1e+21"},
		{"1e22", "1E22", "1e+22"},
		{"21 digits", "123456789012345678901", "123456789012345680000"},
		{"2^68", "295147905179352825856", "295147905179352830000"},
		{"999999999999999999999", "999999999999999999999", "1e+21"},
		{"999999999999999868928", "999999999999999868928", "999999999999999900000"},
		{"1e-6", "0.000001", "0.000001"},
		{"1e-7", "1e-7", "1e-7"},
		{"1.5e-7", "0.00000015", "1.5e-7"},
		{"min subnormal", "5e-324", "5e-324"},
		{"min subnormal, written long", "4.9406564584124654e-324", "5e-324"},
		{"minus min subnormal", "-5e-324", "-5e-324"},
		{"below the min subnormal", "2e-324", "0"},
		{"max double", "1.7976931348623157e308", "1.7976931348623157e+308"},
		{"minus max double", "-1.7976931348623157e308", "-1.7976931348623157e+308"},
		{"2^53", "9007199254740992", "9007199254740992"},
		{"2^53+1 rounds", "9007199254740993", "9007199254740992"},
		{"0.1", "0.1", "0.1"},
		{"0.1+0.2", "0.30000000000000004", "0.30000000000000004"},
		{"a third", "0.333333333333333314829616256247390992939472198486328125", "0.3333333333333333"},
		{"pi", "3.14159265358979323846", "3.141592653589793"},
		{"RFC 8785 333333333.33333329", "333333333.33333329", "333333333.3333333"},
		{"RFC 8785 1e23", "1e23", "1e+23"},
		{"RFC 8785 9.999999999999997e22", "9.999999999999997e22", "9.999999999999997e+22"},
		{"RFC 8785 4.35", "4.35", "4.35"},
		{"RFC 8785 0.002", "0.002", "0.002"},
		{"RFC 8785 0.000001", "1e-6", "0.000001"},
		{"RFC 8785 1e-7 as 0.0000001", "0.0000001", "1e-7"},
		{"large exponent digits", "1e0000000000000000000010", "10000000000"},
		{"negative", "-123.456e2", "-12345.6"},
		{"123e-20", "123e-20", "1.23e-18"},
		{"1e-5", "1e-5", "0.00001"},
	} {
		ok("number "+c[0], "", "["+c[1]+"]", "["+c[2]+"]")
	}

	// Strings: only what must be escaped is, in the short forms, the rest
	// as UTF-8.
	ok("control characters", "\\b \\t \\n \\f \\r short, the other controls as lower-case \\u00xx",
		`"\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001f\u001F"`, `"\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001f\u001f"`)
	ok("quote and backslash", "", `"\"\\"`, `"\"\\"`)
	ok("slash", "never escaped", `"\/ /"`, `"/ /"`)
	ok("DEL", "not a control character for JSON", `"\u007f"`, "\"\x7f\"")
	ok("U+2028 and U+2029", "not escaped", `"\u2028\u2029"`, "\"\u2028\u2029\"")
	ok("non-ASCII, escaped", "written as UTF-8", `"\u00e9\u20ac\ud83d\ude00"`, `"é€😀"`)
	ok("non-ASCII, as UTF-8", "", `"é€😀"`, `"é€😀"`)
	ok("escapes in upper and lower case", "", `"\u00E9\u00e9"`, `"éé"`)
	ok("U+FFFF and U+FFFE", "noncharacters are characters", "\"\uffff\\ufffe\"", "\"\uffff\ufffe\"")
	ok("U+FEFF in a string", "a byte order mark is a character inside a string", `"\ufeff"`, "\"\ufeff\"")

	fail("duplicate key", "", `{"a":1,"a":2}`)
	fail("duplicate key by escape", "", `{"a":1,"\u0061":2}`)
	fail("duplicate astral key by escape", "", `{"😀":1,"\ud83d\ude00":2}`)
	fail("duplicate key, nested", "", `{"a":{"b":1,"b":1}}`)
	fail("lone high surrogate", "", `"\ud800"`)
	fail("lone low surrogate", "", `"\udc00"`)
	fail("high surrogate then a letter", "", `"\ud800a"`)
	fail("high surrogate then another high", "", `"\ud800\ud800"`)
	fail("surrogates reversed", "", `"\ude00\ud83d"`)
	fail("lone surrogate in a key", "", `{"\udbff":1}`)
	fail("UTF-8 encoded surrogate", "", "\"\xed\xa0\x80\"")
	fail("invalid UTF-8", "", "\"\xff\"")
	fail("overlong UTF-8", "", "\"\xc0\xaf\"")
	fail("truncated UTF-8", "", "\"\xe2\x82\"")
	fail("UTF-8 beyond U+10FFFF", "", "\"\xf4\x90\x80\x80\"")
	fail("byte order mark", "", "\ufeff{}")
	fail("non-ASCII outside strings", "", "{\"a\":1\u00a0}")
	fail("raw control character", "", "\"\t\"")
	fail("raw newline", "", "\"\n\"")
	fail("bad escape", "", `"\x41"`)
	fail("short unicode escape", "", `"\u41"`)
	fail("unicode escape with a sign", "", `"\u+041"`)
	fail("upper-case U escape", "", `"\U0041"`)
	fail("trailing comma in an array", "", `[1,]`)
	fail("trailing comma in an object", "", `{"a":1,}`)
	fail("leading comma", "", `[,1]`)
	fail("missing value", "", `{"a":}`)
	fail("missing colon", "", `{"a" 1}`)
	fail("unquoted key", "", `{a:1}`)
	fail("single quotes", "", `{'a':1}`)
	fail("comment", "", `/**/{}`)
	fail("two values", "", `{} {}`)
	fail("trailing garbage", "", `{}x`)
	fail("empty", "", ``)
	fail("white space only", "", " \n")
	fail("NaN", "", `NaN`)
	fail("Infinity", "", `[Infinity]`)
	fail("minus Infinity", "", `[-Infinity]`)
	fail("1e400", "beyond the largest double", `[1e400]`)
	fail("-1e400", "", `[-1e400]`)
	fail("leading zero", "", `[01]`)
	fail("minus leading zero", "", `[-01]`)
	fail("plus sign", "", `[+1]`)
	fail("trailing dot", "", `[1.]`)
	fail("leading dot", "", `[.5]`)
	fail("exponent without digits", "", `[1e]`)
	fail("exponent sign only", "", `[1e+]`)
	fail("lone minus", "", `[-]`)
	fail("hex", "", `[0x10]`)
	fail("true in capitals", "", `[True]`)
	fail("nul", "", `[nul]`)
	fail("unterminated string", "", `"abc`)
	fail("unterminated array", "", `[1`)
	fail("unterminated object", "", `{"a":1`)
	fail("10,001 nested arrays", "at most 10,000 levels of nesting", strings.Repeat("[", 10001)+strings.Repeat("]", 10001))
	return cases
}
