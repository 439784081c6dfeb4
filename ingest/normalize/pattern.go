package normalize

import "regexp/syntax"

// classRun returns a plain check equivalent to regexp's MatchString for a
// pattern that is one character class repeated over the whole value, such
// as the default ^[0-]+$. Such patterns run on every identifier, and the
// regexp engine costs several times the loop. ok is false for any other
// pattern, which then goes to regexp.
func classRun(pattern string) (match func(string) bool, ok bool) {
	re, err := syntax.Parse(pattern, syntax.Perl) // as regexp.Compile parses
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 ||
		re.Sub[0].Op != syntax.OpBeginText || re.Sub[2].Op != syntax.OpEndText ||
		re.Sub[1].Op != syntax.OpPlus || re.Sub[1].Sub[0].Op != syntax.OpCharClass {
		return nil, false
	}
	// The parser has folded case into the class already: (?i)[a] holds A and a.
	ranges := re.Sub[1].Sub[0].Rune // lo, hi pairs
	return func(s string) bool {
		if s == "" {
			return false
		}
		for _, r := range s { // invalid UTF-8 reads as U+FFFD, as in regexp
			if !inRanges(r, ranges) {
				return false
			}
		}
		return true
	}, true
}

func inRanges(r rune, ranges []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}
