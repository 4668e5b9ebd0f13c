package config

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"equals", "a=b", map[string]string{"a": "b"}},
		{"colon", "a: b", map[string]string{"a": "b"}},
		{"space separator", "a b", map[string]string{"a": "b"}},
		{"tab separator", "a\tb", map[string]string{"a": "b"}},
		{"blanks around equals", "a   =   b", map[string]string{"a": "b"}},
		{"blanks then colon", "a \f: b", map[string]string{"a": "b"}},
		{"only one separator is eaten", "a = = b", map[string]string{"a": "= b"}},
		{"colon then equals", "a:=b", map[string]string{"a": "=b"}},
		{"leading blanks on line", "   \t a=b", map[string]string{"a": "b"}},
		{"trailing blanks trimmed", "a=b  \t ", map[string]string{"a": "b"}},
		{"escaped trailing blank kept", `a=b\ `, map[string]string{"a": "b "}},
		{"inner blanks kept", "a=b  c", map[string]string{"a": "b  c"}},
		{"hash inside value", "a=b#c", map[string]string{"a": "b#c"}},
		{"key only", "a", map[string]string{"a": ""}},
		{"key and equals", "a=", map[string]string{"a": ""}},
		{"key and colon with blanks", "a :  ", map[string]string{"a": ""}},
		{"hash comment", "# c\na=b", map[string]string{"a": "b"}},
		{"bang comment", "! c\na=b", map[string]string{"a": "b"}},
		{"indented comment", "   # c\na=b", map[string]string{"a": "b"}},
		{"blank lines", "\n\n  \t\na=b\n\n", map[string]string{"a": "b"}},
		{"duplicate last wins", "a=1\nb=2\na=3", map[string]string{"a": "3", "b": "2"}},
		{"crlf", "a=1\r\nb=2\r\n", map[string]string{"a": "1", "b": "2"}},
		{"cr", "a=1\rb=2\r", map[string]string{"a": "1", "b": "2"}},
		{"continuation", "a=b\\\n   c", map[string]string{"a": "bc"}},
		{"continuation keeps inner blanks", "a=b \\\n   c", map[string]string{"a": "b c"}},
		{"continuation twice", "a=1,\\\n  2,\\\n  3\nb=4", map[string]string{"a": "1,2,3", "b": "4"}},
		{"continuation in key", "ab\\\n  cd=1", map[string]string{"abcd": "1"}},
		{"continuation onto hash", "a=b\\\n  #c", map[string]string{"a": "b#c"}},
		{"continuation onto blank line", "a=b\\\n\nc=d", map[string]string{"a": "b", "c": "d"}},
		{"continuation with crlf", "a=b\\\r\n  c", map[string]string{"a": "bc"}},
		{"continuation at end of input", "a=b\\", map[string]string{"a": "b"}},
		{"comment does not continue", "# c \\\na=b", map[string]string{"a": "b"}},
		{"even backslashes do not continue", "a=b\\\\\nc=d", map[string]string{"a": `b\`, "c": "d"}},
		{"three backslashes continue", "a=b\\\\\\\nc", map[string]string{"a": `b\c`}},
		{"escapes", `a=x\ty\nz\rw\fv`, map[string]string{"a": "x\ty\nz\rw\fv"}},
		{"unicode escape", `a=\u0041\u00e9`, map[string]string{"a": "Aé"}},
		{"unicode escape upper hex", `a=\u00E9`, map[string]string{"a": "é"}},
		{"surrogate pair", `a=\uD83D\uDE00!`, map[string]string{"a": "😀!"}},
		{"other escapes drop backslash", `a=\q\#\!\\`, map[string]string{"a": `q#!\`}},
		{"escaped equals in key", `a\=b=c`, map[string]string{"a=b": "c"}},
		{"escaped colon in key", `a\:b:c`, map[string]string{"a:b": "c"}},
		{"escaped space in key", `a\ b=c`, map[string]string{"a b": "c"}},
		{"escaped hash starts key", `\#a=b`, map[string]string{"#a": "b"}},
		{"raw utf8", "a=héllo wörld", map[string]string{"a": "héllo wörld"}},
		{"kafka sample", `
############################# Server Basics #############################
# The id of the broker.
broker.id=0
listeners=PLAINTEXT://:9092
log.dirs=/tmp/kafka-logs
num.partitions=1
log.retention.hours=168
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
    SSL:SSL
`, map[string]string{
			"broker.id": "0", "listeners": "PLAINTEXT://:9092", "log.dirs": "/tmp/kafka-logs",
			"num.partitions": "1", "log.retention.hours": "168",
			"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL",
		}},
		{"empty input", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProperties(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseProperties(%q): %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseProperties(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines []int  // lines named, in order
		msg   string // substring of the joined message
	}{
		{"malformed unicode", "a=b\n\nc=\\u12G4", []int{3}, `malformed \uXXXX escape`},
		{"short unicode at end", `x=\u12`, []int{1}, "fewer than four hex digits"},
		{"lone high surrogate", `a=\uD83Dx`, []int{1}, "unpaired UTF-16 surrogate"},
		{"high surrogate at end", `a=\uD83D`, []int{1}, "unpaired"},
		{"lone low surrogate", `a=\uDE00`, []int{1}, "unpaired"},
		{"empty key", "a=1\n=v", []int{2}, "empty key"},
		{"empty key from colon", ": v", []int{1}, "empty key"},
		{"invalid utf8", "a=\xff", []int{1}, "not valid UTF-8"},
		{"error on continuation line", "a=b\\\n  \\uZZZZ", []int{2}, "malformed"},
		{"every problem reported", "=x\nok=1\ny=\\u00\n", []int{1, 3}, "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProperties(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseProperties(%q): no error", tt.in)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			var lines []int
			for _, e := range unjoin(err) {
				var se *SyntaxError
				if !errors.As(e, &se) {
					t.Fatalf("error %v is not a *SyntaxError", e)
				}
				if !strings.HasPrefix(se.Error(), "line ") {
					t.Errorf("message %q does not start with the line", se.Error())
				}
				lines = append(lines, se.Line)
			}
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("lines = %v, want %v", lines, tt.lines)
			}
		})
	}
}

func TestParsePropertiesReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseProperties(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
}

// encodeProperties writes props in a form ParseProperties reads back
// exactly: keys sorted, every special character escaped.
func encodeProperties(props map[string]string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(escapeProperty(k))
		b.WriteByte('=')
		b.WriteString(escapeProperty(props[k]))
		b.WriteByte('\n')
	}
	return b.String()
}

func escapeProperty(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case ' ', '=', ':', '#', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestPropertiesRoundTrip(t *testing.T) {
	in := map[string]string{
		"plain": "value", "spaces": "  lead and trail  ", "a=b": "c:d", "#hash": "!bang",
		"tabs\tand\nnewlines": "\r\f", "back\\slash": `\\`, "unicode": "héllo 😀", "empty": "",
	}
	got, err := ParseProperties(strings.NewReader(encodeProperties(in)))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, in) {
		t.Errorf("round trip = %q, want %q", got, in)
	}
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{
		"a=b", "a: b\n# c\n! d\n", "a b\\\n  c", `k\ e\=y=\u00e9\t`, "a=b\r\nc=d\re=f",
		`x=\uD83D\uDE00`, "=v", "a=\\", "a=\\u12", "  \f\t", "a=b   ", `a=b\ `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		props, err := ParseProperties(strings.NewReader(in))
		if err != nil {
			for _, e := range unjoin(err) {
				var se *SyntaxError
				if !errors.As(e, &se) || se.Line < 1 {
					t.Fatalf("bad error %v", e)
				}
			}
			return
		}
		enc := encodeProperties(props)
		again, err := ParseProperties(strings.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", enc, in, err)
		}
		if !maps.Equal(props, again) {
			t.Fatalf("round trip of %q: %q became %q", in, props, again)
		}
	})
}

// unjoin flattens an errors.Join tree into its leaves.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
