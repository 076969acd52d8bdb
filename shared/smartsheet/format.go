package smartsheet

// FormatCurrencyUSD is the format descriptor of a column (or cell) that shows
// numbers as US dollars with two decimals and thousands separators:
// 4350 → "$4,350.00", -40 → "-$40.00". Set it as Column.Format when creating
// a sheet or adding a column, or as ColumnUpdate.Format, so callers never
// hand-write the descriptor.
//
// A descriptor has 17 comma-separated positions (fontFamily, fontSize, bold,
// italic, underline, strikethrough, horizontalAlign, verticalAlign, textColor,
// backgroundColor, taskbarColor, currency, decimalCount, thousandsSeparator,
// numberFormat, textWrap, dateFormat); each value is an index into a table of
// GET /serverinfo (FormatTables), and an empty position keeps the default.
// This one sets only the number positions:
//
//	11 currency           13 = USD. Smartsheet's cell-formatting guide and the
//	                      official Java SDK's Currency enum agree on 13; the
//	                      currency list printed as an example in the OpenAPI
//	                      FormatTables is sorted by code and is not the
//	                      server's index order.
//	12 decimalCount        2 = two decimal places
//	13 thousandsSeparator  1 = on
//	14 numberFormat        2 = CURRENCY (none, NUMBER, CURRENCY, PERCENT)
//
// A column's format is the baseline of its cells; a cell's own format takes
// precedence.
const FormatCurrencyUSD = ",,,,,,,,,,,13,2,1,2,,"
