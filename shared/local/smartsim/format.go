package smartsim

import (
	"strconv"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// Positions of a format descriptor: 17 comma-separated indexes into the
// tables of GET /serverinfo (fontFamily, fontSize, bold, italic, underline,
// strikethrough, horizontalAlign, verticalAlign, textColor, backgroundColor,
// taskbarColor, currency, decimalCount, thousandsSeparator, numberFormat,
// textWrap, dateFormat). Only the number positions change what the simulator
// computes (displayValue); the others are stored and returned as given.
const (
	formatPositions    = 17
	fmtCurrency        = 11
	fmtDecimalCount    = 12
	fmtThousands       = 13
	fmtNumberFormat    = 14
	numberFormatNone   = 0
	numberFormatNumber = 1
	numberFormatMoney  = 2 // CURRENCY
	numberFormatPct    = 3 // PERCENT
	maxDecimalCount    = 5
	currencyUSD        = 13
)

// currencyTable is the currency lookup table in Smartsheet's index order:
// the order of the official Java SDK's Currency enum, whose position 13 (USD)
// matches Smartsheet's cell-formatting guide. The OpenAPI FormatTables
// example lists the same codes sorted alphabetically, which cannot be the
// server's order (indexes never change; new ones are appended). Symbols are
// the OpenAPI example's.
var currencyTable = []currency{
	{"none", "none"}, {"ARS", "$"}, {"AUD", "$"}, {"BRL", "R$"}, {"CAD", "$"}, {"CLP", "$"},
	{"EUR", "€"}, {"GBP", "£"}, {"ILS", "₪"}, {"INR", "₹"}, {"JPY", "¥"}, {"MXN", "$"},
	{"RUB", "₽"}, {"USD", "$"}, {"ZAR", "R"}, {"CHF", "CHF"}, {"CNY", "¥"}, {"DKK", "kr."},
	{"HKD", "$"}, {"KRW", "₩"}, {"NOK", "kr"}, {"NZD", "$"}, {"SEK", "kr"}, {"SGD", "$"},
}

// currency is an entry of the currency table (GET /serverinfo formats.currency).
type currency struct {
	Code   string `json:"code"`
	Symbol string `json:"symbol"`
}

// validFormat reports whether f is a format descriptor: at most 17
// positions, each empty or a small non-negative index.
func validFormat(f string) bool {
	if f == "" {
		return true
	}
	parts := strings.Split(f, ",")
	if len(parts) > formatPositions {
		return false
	}
	for _, p := range parts {
		if p == "" {
			continue
		}
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 {
			return false
		}
	}
	return true
}

// formatIndex returns position pos of a descriptor and whether it is set.
func formatIndex(f string, pos int) (int, bool) {
	for i := 0; i < pos; i++ {
		c := strings.IndexByte(f, ',')
		if c < 0 {
			return 0, false
		}
		f = f[c+1:]
	}
	if c := strings.IndexByte(f, ','); c >= 0 {
		f = f[:c]
	}
	n, err := strconv.Atoi(f)
	return n, err == nil
}

// effectiveIndex is position pos of the cell's own format, else of its
// column's: a cell's format overrides the column's position by position.
func effectiveIndex(own, column string, pos int) (int, bool) {
	if n, ok := formatIndex(own, pos); ok {
		return n, true
	}
	return formatIndex(column, pos)
}

// formatNumber renders a number the way Smartsheet displays it under the
// number positions of the effective format (own over column): NUMBER and
// CURRENCY with decimalCount and the thousands separator, PERCENT as value ×
// 100 with "%". Choices where Smartsheet's rules are not documented: an unset
// decimalCount keeps the number's own decimals, except CURRENCY which shows
// 2; an unset currency under CURRENCY is USD; the symbol always precedes the
// amount and the minus sign precedes the symbol ("-$40.00"). ok is false
// when v is not a number or no number format applies (the caller keeps the
// plain text).
func formatNumber(v smartsheet.Value, own, column string) (string, bool) {
	if v.Kind() != smartsheet.KindNumber {
		return "", false
	}
	if own == "" && column == "" {
		return "", false
	}
	nf, _ := effectiveIndex(own, column, fmtNumberFormat)
	if nf == numberFormatNone || nf > numberFormatPct {
		return "", false
	}
	d, err := decimal.NewFromString(v.Text())
	if err != nil {
		return "", false
	}
	if nf == numberFormatPct {
		d = d.Shift(2)
	}
	places, set := effectiveIndex(own, column, fmtDecimalCount)
	switch {
	case set:
		places = min(places, maxDecimalCount)
	case nf == numberFormatMoney:
		places = 2
	default:
		places = max(int(-d.Exponent()), 0)
	}
	neg := d.IsNegative()
	text := d.Abs().StringFixed(int32(places))
	if sep, _ := effectiveIndex(own, column, fmtThousands); sep == 1 {
		text = groupThousands(text)
	}
	var b strings.Builder
	if neg && !d.Round(int32(places)).IsZero() {
		b.WriteByte('-')
	}
	if nf == numberFormatMoney {
		cur, ok := effectiveIndex(own, column, fmtCurrency)
		if !ok {
			cur = currencyUSD
		}
		if cur > 0 && cur < len(currencyTable) {
			b.WriteString(currencyTable[cur].Symbol)
		}
	}
	b.WriteString(text)
	if nf == numberFormatPct {
		b.WriteByte('%')
	}
	return b.String(), true
}

// groupThousands inserts "," every three digits of the integer part of a
// non-negative decimal text.
func groupThousands(s string) string {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if len(intPart) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(intPart) % 3
	if lead > 0 {
		b.WriteString(intPart[:lead])
	}
	for i := lead; i < len(intPart); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(intPart[i : i+3])
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

func errBadFormat(f string) *apiError { return errBadParam(f, "format") }
