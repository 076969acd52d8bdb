package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// Who is the display form of an attribution's author: "Name <email>", the
// one that is known, or "" when neither is.
func Who(a Attribution) string {
	switch {
	case a.Name != "" && a.User != "":
		return a.Name + " <" + a.User + ">"
	case a.Name != "":
		return a.Name
	default:
		return a.User
	}
}

// IsAutomation reports whether an attribution names Smartsheet automation.
func IsAutomation(a Attribution) bool {
	return strings.EqualFold(strings.TrimSpace(a.User), AutomationEmail) ||
		(a.User == "" && strings.EqualFold(strings.TrimSpace(a.Name), "Automation"))
}

// Pseudonymizer returns a function mapping an identity to a stable pseudonym
// such as "user-3f9a2c1b": the first 4 bytes of HMAC-SHA256(key, identity),
// with the identity trimmed and lower-cased so an email's case does not
// matter. The same key and identity always give the same pseudonym; without
// the key a pseudonym cannot be tested against a guessed name. "" stays "".
func Pseudonymizer(key []byte) func(string) string {
	k := slices.Clone(key)
	return func(id string) string {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" {
			return ""
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		return "user-" + hex.EncodeToString(m.Sum(nil)[:4])
	}
}

// sheetLabel is how a sheet is named in a recommendation or finding group:
// its name, or "sheet <id>" when it has none.
func sheetLabel(name string, id int64) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("sheet %d", id)
}

// quoteList quotes and joins column titles, "A", "B"; empty stands for an
// empty list.
func quoteList(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// plural counts a noun in English: "1 row", "2 rows", "3 entries".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// MoneyText formats an amount for text: "$1,234.50", "-$20.00".
func MoneyText(d decimal.Decimal) string {
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if d.IsNegative() && !d.Round(2).IsZero() {
		b.WriteByte('-')
	}
	b.WriteByte('$')
	for i, ch := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	b.WriteByte('.')
	b.WriteString(frac)
	return b.String()
}
