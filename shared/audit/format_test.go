package audit

import (
	"strings"
	"testing"
)

func TestPseudonymizer(t *testing.T) {
	p := Pseudonymizer([]byte("key-1"))
	a, b := p("Kim@Example.com"), p(" kim@example.com ")
	if a != b || !strings.HasPrefix(a, "user-") || len(a) != len("user-")+8 {
		t.Errorf("Pseudonymizer = %q, %q; want the same user-xxxxxxxx", a, b)
	}
	if a == p("raj@example.com") || a == Pseudonymizer([]byte("key-2"))("kim@example.com") {
		t.Error("pseudonyms collide across names or keys")
	}
	if p("") != "" {
		t.Errorf("Pseudonymizer(\"\") = %q, want \"\"", p(""))
	}
}

func TestMoneyText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "$0.00"}, {"1234.5", "$1,234.50"}, {"-20", "-$20.00"}, {"1234567.891", "$1,234,567.89"}, {"-0.001", "$0.00"},
	}
	for _, tc := range tests {
		if got := MoneyText(d(tc.in)); got != tc.want {
			t.Errorf("MoneyText(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
