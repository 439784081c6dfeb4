package normalize

import (
	"regexp"
	"testing"
)

// TestClassRun holds the plain check of classRun to regexp's answer.
func TestClassRun(t *testing.T) {
	patterns := []string{`^[0-]+$`, `^[a-z]+$`, `^[^0-9]+$`, `^\d+$`, `^[\s0]+$`, `^[[:upper:]_]+$`}
	fallback := []string{`^x+$`, `^tmp-`, `[0-]+`, `^[0-]*$`, `^[0-]+`, `^[0-]+$|^n/a$`, `(`}
	values := []string{"", "0", "000-", "00a", "-", "a", "A", "abc", "ABC", "aBc", "\u212a", "\u017f", "s",
		"\n", "0\n", "\n0", "\U0001f600", "\xff", "0\xff0", "123", "١٢٣", " 0 ", "\t", "A_B", "a_b", "x", "xx"}
	for _, p := range patterns {
		p = "(?i)" + p
		match, ok := classRun(p)
		if !ok {
			t.Errorf("classRun(%q) not ok, want a plain check", p)
			continue
		}
		re := regexp.MustCompile(p)
		for _, v := range values {
			if got, want := match(v), re.MatchString(v); got != want {
				t.Errorf("classRun(%q)(%q) = %v, want %v", p, v, got, want)
			}
		}
	}
	for _, p := range fallback {
		if _, ok := classRun("(?i)" + p); ok {
			t.Errorf("classRun(%q) ok, want regexp", p)
		}
	}
}

func FuzzClassRun(f *testing.F) {
	for _, v := range []string{"0", "00-0", "0a", "\u212a", "\xff", ""} {
		f.Add(v)
	}
	patterns := []string{`(?i)^[0-]+$`, `(?i)^[a-z]+$`, `(?i)^[^0-9]+$`}
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		res[i] = regexp.MustCompile(p)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for i, p := range patterns {
			match, _ := classRun(p)
			if got, want := match(v), res[i].MatchString(v); got != want {
				t.Errorf("classRun(%q)(%q) = %v, want %v", p, v, got, want)
			}
		}
	})
}
