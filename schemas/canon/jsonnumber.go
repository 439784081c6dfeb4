package canon

// JSONNumberEnd returns where the JSON number literal starting at s[i]
// ends (RFC 8259: an optional minus, an integer part without leading
// zeros, an optional fraction and exponent), and false when no number
// starts there. A digit after a leading zero ("01") is left to the
// caller, as the end of the number "0". The decoders' parser and the
// store's encoder both hold numbers to this one grammar.
func JSONNumberEnd[T string | []byte](s T, i int) (int, bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return 0, false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		i = digitsEnd(s, i+1)
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		j := digitsEnd(s, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digitsEnd(s, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// digitsEnd returns the index of the first non-digit of s from i.
func digitsEnd[T string | []byte](s T, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}
