package config

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError is a problem in a .properties file, with the line it is on.
type SyntaxError struct {
	// Line is the 1-based line number of the problem.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error returns "line N: message".
func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseProperties reads a Java .properties file, the format of Kafka's
// server.properties, and returns its keys and values.
//
// It follows java.util.Properties.load: lines end with \n, \r\n or \r;
// leading blanks (space, tab, form feed) are skipped; a line whose first
// non-blank character is '#' or '!' is a comment; a key ends at the first
// unescaped '=', ':' or blank, and one '=' or ':' with blanks around it
// separates it from the value; a line ending in an odd number of
// backslashes continues on the next line, whose leading blanks are
// skipped; escapes are \t \n \r \f \uXXXX (surrogate pairs are joined) and
// a backslash before any other character stands for that character. A
// later duplicate key replaces an earlier one.
//
// It departs from Java in three ways, each to turn a silent surprise into a
// clear result: trailing unescaped blanks of a value are dropped (Kafka
// trims values anyway, and invisible trailing spaces are a classic
// server.properties bug); the input is read as UTF-8 rather than
// ISO-8859-1, and a key or value that is not valid UTF-8 is an error; an
// empty key is an error. All problems are reported, joined, each naming
// its line.
func ParseProperties(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading properties: %w", err)
	}
	lines := splitNaturalLines(string(data))
	props := make(map[string]string)
	var errs []error
	for i := 0; i < len(lines); i++ {
		first := i
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue // blank or comment; comments never continue
		}
		// Join continuation lines. spans records where each natural line
		// starts in the logical line, so errors can name the right line.
		// Only the current natural line's trailing backslashes decide:
		// what is left of the previous one ends in an even run.
		spans := []lineSpan{{at: 0, line: first + 1}}
		var logical strings.Builder
		for cur := line; ; {
			if !oddTrailingBackslashes(cur) {
				logical.WriteString(cur)
				break
			}
			logical.WriteString(cur[:len(cur)-1])
			if i+1 >= len(lines) {
				break // a final backslash at end of input is dropped, as in Java
			}
			i++
			spans = append(spans, lineSpan{at: logical.Len(), line: i + 1})
			cur = strings.TrimLeft(lines[i], " \t\f")
		}
		key, val, perr := parseLogicalLine(logical.String(), spans)
		if perr != nil {
			errs = append(errs, perr)
			continue
		}
		props[key] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return props, nil
}

// lineSpan maps a byte offset in a logical line to the natural line it
// came from.
type lineSpan struct {
	at   int
	line int
}

func lineAt(spans []lineSpan, pos int) int {
	n := spans[0].line
	for _, s := range spans {
		if s.at <= pos {
			n = s.line
		}
	}
	return n
}

// splitNaturalLines splits on \n, \r\n and \r, as Java's LineReader does.
func splitNaturalLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return lines
}

func oddTrailingBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func isPropBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// parseLogicalLine splits a logical line into its unescaped key and value.
func parseLogicalLine(s string, spans []lineSpan) (string, string, error) {
	// The key runs to the first unescaped separator or blank.
	keyEnd, valStart := len(s), len(s)
	hasSep, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escaped && (c == '=' || c == ':') {
			keyEnd, valStart, hasSep = i, i+1, true
			break
		}
		if !escaped && isPropBlank(c) {
			keyEnd, valStart = i, i+1
			break
		}
		escaped = c == '\\' && !escaped
	}
	// Blanks, then at most one separator if none was seen yet, then blanks.
	for valStart < len(s) {
		c := s[valStart]
		if !isPropBlank(c) {
			if hasSep || (c != '=' && c != ':') {
				break
			}
			hasSep = true
		}
		valStart++
	}
	key, err := unescape(s, 0, keyEnd, spans)
	if err != nil {
		return "", "", err
	}
	if key == "" {
		return "", "", &SyntaxError{Line: spans[0].line, Msg: "empty key"}
	}
	val, err := unescape(s, valStart, len(s), spans)
	if err != nil {
		return "", "", err
	}
	return key, val, nil
}

// unescape decodes s[from:to], dropping unescaped trailing blanks.
func unescape(s string, from, to int, spans []lineSpan) (string, error) {
	var b strings.Builder
	keep := 0 // length of b up to the last character that must be kept
	var pendingHigh rune = -1
	pendingAt := 0
	flushHigh := func() error {
		if pendingHigh >= 0 {
			return &SyntaxError{Line: lineAt(spans, pendingAt), Msg: fmt.Sprintf(`\u%04X is an unpaired UTF-16 surrogate`, pendingHigh)}
		}
		return nil
	}
	for i := from; i < to; i++ {
		c := s[i]
		if c != '\\' {
			if err := flushHigh(); err != nil {
				return "", err
			}
			b.WriteByte(c)
			if !isPropBlank(c) {
				keep = b.Len()
			}
			continue
		}
		escAt := i
		i++
		if i >= to {
			break // only possible at end of input; Java drops it too
		}
		c = s[i]
		if c != 'u' {
			if err := flushHigh(); err != nil {
				return "", err
			}
			switch c {
			case 't':
				c = '\t'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 'f':
				c = '\f'
			}
			b.WriteByte(c)
			keep = b.Len()
			continue
		}
		if i+5 > to {
			return "", &SyntaxError{Line: lineAt(spans, escAt), Msg: `malformed \uXXXX escape: fewer than four hex digits`}
		}
		var r rune
		for _, h := range s[i+1 : i+5] {
			d := hexDigit(h)
			if d < 0 {
				return "", &SyntaxError{Line: lineAt(spans, escAt), Msg: fmt.Sprintf(`malformed \uXXXX escape %q`, s[escAt:i+5])}
			}
			r = r<<4 | rune(d)
		}
		i += 4
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00: // high half
			if err := flushHigh(); err != nil {
				return "", err
			}
			pendingHigh, pendingAt = r, escAt
			continue
		case utf16.IsSurrogate(r): // low half
			if pendingHigh < 0 {
				return "", &SyntaxError{Line: lineAt(spans, escAt), Msg: fmt.Sprintf(`\u%04X is an unpaired UTF-16 surrogate`, r)}
			}
			r = utf16.DecodeRune(pendingHigh, r)
			pendingHigh = -1
		default:
			if err := flushHigh(); err != nil {
				return "", err
			}
		}
		b.WriteRune(r)
		keep = b.Len()
	}
	if err := flushHigh(); err != nil {
		return "", err
	}
	out := b.String()[:keep]
	if !utf8.ValidString(out) {
		return "", &SyntaxError{Line: lineAt(spans, from), Msg: "not valid UTF-8"}
	}
	return out, nil
}

func hexDigit(r rune) int {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0')
	case r >= 'a' && r <= 'f':
		return int(r-'a') + 10
	case r >= 'A' && r <= 'F':
		return int(r-'A') + 10
	}
	return -1
}
