package smartsheet

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeCases are sheets whose DecodeSheet result must equal json.Unmarshal's.
var decodeCases = []struct{ name, in string }{
	{"minimal", `{"id":1,"name":"S"}`},
	{"version only", `{"version":41}`},
	{"null", `null`},
	{"empty rows", `{"id":1,"name":"S","rows":[],"columns":[]}`},
	{"whitespace", " {\n\t\"id\" : 1 ,\r\n \"rows\" : [ { \"id\" : 2 , \"cells\" : [ { \"columnId\" : 3 , \"value\" : 4.50 } ] } ] } \n"},
	{"values", `{"rows":[{"id":1,"cells":[{"columnId":1,"value":"a"},{"columnId":2,"value":-12.50e+2},{"columnId":3,"value":true},{"columnId":4,"value":false},{"columnId":5,"value":null},{"columnId":6},{"columnId":7,"value":{"objectType":"DATE","value":"2024-01-01"}},{"columnId":8,"value":[1,"x"]},{"columnId":9,"value":0}]}]}`},
	{"escapes", `{"name":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\ud800x","rows":[{"cells":[{"columnId":1,"value":"x\u0041\"y","displayValue":"\b\f\r"}]}]}`},
	{"unicode", `{"name":"Café ☕ 日本","rows":[{"cells":[{"columnId":1,"value":"naïve – ok"}]}]}`},
	{"invalid utf8", "{\"name\":\"a\xffb\",\"rows\":[{\"cells\":[{\"columnId\":1,\"value\":\"\xc3(\"}]}]}"},
	{"case-insensitive keys", `{"ID":1,"Name":"S","rows":[{"ID":2,"permaLink":"https://x/r","RowNumber":3,"cells":[{"ColumnId":4,"VALUE":"v","displayvalue":"d"}]}]}`},
	{"writer info and times", `{"createdAt":"2024-06-05T14:53:31Z","modifiedAt":"2024-06-05T14:53:31.123+00:00","rows":[{"id":1,"createdAt":"2024-02-29T00:00:00Z","modifiedAt":"2024-06-05T16:53:31+02:00","createdBy":{"name":"A","email":"a@x","extra":1},"modifiedBy":null,"expanded":true,"locked":false}]}`},
	{"other row and cell fields", `{"rows":[{"id":1,"sheetId":2,"siblingId":3,"parentId":4,"version":5,"format":",,1","toTop":true,"filteredOut":false,"cells":[{"columnId":1,"value":"G","hyperlink":{"url":"http://g","sheetId":2},"linkInFromCell":{"sheetId":4,"rowId":5},"objectValue":{"objectType":"PREDECESSOR_LIST"},"strict":false,"formula":"=1","format":",2","columnType":"TEXT_NUMBER","conditionalFormat":",,1","image":{"id":"x"}}]}]}`},
	{"columns and unknown sheet fields", `{"id":1,"effectiveAttachmentOptions":["FILE"],"userSettings":{"a":{"b":[1,{"c":null}]}},"columns":[{"id":1,"index":0,"title":"T","type":"PICKLIST","options":["a"],"contactOptions":[{"name":"n","email":"e"}],"autoNumberFormat":{"prefix":"P"},"primary":true}],"attachments":[{"id":9,"name":"f.pdf","attachmentType":"FILE"}],"totalRowCount":0,"accessLevel":"OWNER","permalink":"https://x"}`},
	{"rows before columns", `{"rows":[{"id":1,"cells":[{"columnId":1,"value":1}]}],"columns":[{"id":1,"index":0,"title":"T"}]}`},
	{"null fields", `{"id":null,"name":null,"rows":[{"id":null,"cells":null,"createdAt":null,"expanded":null,"permalink":null}],"columns":null}`},
	{"duplicate keys", `{"name":"a","name":"b","rows":[{"id":1}],"rows":[{"id":2},{"id":3}]}`},
	{"big ids", `{"id":9223372036854775807,"rows":[{"id":-9223372036854775808,"rowNumber":2147483647}]}`},
}

func TestDecodeSheetMatchesEncodingJSON(t *testing.T) {
	cases := append(decodeCases, struct{ name, in string }{"generated 300 rows", string(sheetJSON(t, 300))})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var want, got Sheet
			if err := json.Unmarshal([]byte(tt.in), &want); err != nil {
				t.Fatalf("json.Unmarshal error: %v", err)
			}
			if err := DecodeSheet([]byte(tt.in), &got); err != nil {
				t.Fatalf("DecodeSheet() error: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DecodeSheet() differs from json.Unmarshal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSheetRejectsBadJSON(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"truncated", `{"id":1,"rows":[{"id":2`},
		{"trailing data", `{"id":1} x`},
		{"bad number", `{"rows":[{"cells":[{"columnId":1,"value":01}]}]}`},
		{"bad literal", `{"rows":[{"expanded":tru}]}`},
		{"float id", `{"id":1.5}`},
		{"string id", `{"id":"1"}`},
		{"bad escape", `{"name":"\x"}`},
		{"control char", "{\"name\":\"a\nb\"}"},
		{"bad time", `{"rows":[{"createdAt":"yesterday"}]}`},
		{"missing colon", `{"id" 1}`},
		{"unterminated string", `{"name":"abc`},
		{"bad escape in unknown field", `{"other":"\q"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sheet
			if err := DecodeSheet([]byte(tt.in), &s); err == nil {
				t.Errorf("DecodeSheet(%q) = nil error, want one", tt.in)
			}
		})
	}
}

func FuzzDecodeSheet(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got Sheet
		if json.Unmarshal(data, &want) != nil {
			return
		}
		if err := DecodeSheet(data, &got); err != nil {
			t.Fatalf("DecodeSheet(%q) error %v, json.Unmarshal accepted it", data, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("DecodeSheet(%q) differs from json.Unmarshal (-want +got):\n%s", data, diff)
		}
	})
}
