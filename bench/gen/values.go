package gen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Salts separate the derived value spaces, so that a person's user id and
// loyalty id are unrelated even though both come from the person's index.
const (
	saltRand uint64 = iota + 1
	saltUser
	saltCRM
	saltLoyalty
	saltKey
	saltSerial
	saltHousehold
	saltPhone
)

// mix64 is the splitmix64 finalizer. It is a bijection on uint64, which is
// what makes derived ids unique per person without keeping a set of them.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// derive returns a value unique to (seed, salt, n): n·odd is injective, the
// xor with a constant is too, and mix64 is a bijection.
func derive(seed int64, salt uint64, n int) uint64 {
	return mix64(uint64(n)*0x9e3779b97f4a7c15 ^ mix64(uint64(seed)^salt<<56))
}

// newRand returns the random source for one unit (a person, a household):
// every draw in the package comes from a PCG seeded this way.
func newRand(seed int64, salt uint64, n int) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(uint64(seed)^salt), derive(seed, salt, n)))
}

func hex16(v uint64) string {
	s := strconv.FormatUint(v, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// uuid4 draws a random RFC 4122 version 4 UUID, lower case.
func uuid4(r *rand.Rand) string {
	const digits = "0123456789abcdef"
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // variant 10
	var b [36]byte
	pos := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[pos] = '-'
			pos++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		b[pos] = digits[nib]
		pos++
	}
	return string(b[:])
}

// tsLayout is RFC 3339 with milliseconds, as Segment libraries send it. All
// times are truncated to the millisecond so that Message.Time equals the
// parsed timestamp exactly.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

func stamp(t time.Time) string { return t.UTC().Format(tsLayout) }

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
	"Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Henry", "Evelyn", "Theodore", "Aria", "Jack",
	"Chloe", "Levi", "Priya", "Arjun", "Mei", "Hiroshi", "Fatima", "Omar", "Zoe", "Diego",
	"Lucia", "Kwame", "Amara", "Sven", "Ingrid", "Chen", "Aisha", "Ravi", "Nora", "Leon",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
	"Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
	"Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
	"Clark", "Lewis", "Robinson", "Walker", "Patel", "Nguyen", "Kim", "Chen", "Okafor",
	"Larsen", "Schmidt", "Rossi", "Tanaka", "Silva",
}

var emailDomains = []string{
	"gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "proton.me", "aol.com", "fastmail.com",
}

// email builds a person's address in canonical (trimmed, lower-case) form.
// The person index in the local part makes it unique.
func email(r *rand.Rand, first, last string, i int) string {
	f, l := strings.ToLower(first), strings.ToLower(last)
	var local string
	switch r.IntN(3) {
	case 0:
		local = f + "." + l + strconv.Itoa(i)
	case 1:
		local = f[:1] + l + "." + strconv.Itoa(i)
	default:
		local = f + "_" + l + "_" + strconv.Itoa(i)
	}
	return local + "@" + emailDomains[r.IntN(len(emailDomains))]
}

// emailVariant is how one form or cashier typed the address: mixed case,
// stray spaces. It normalizes (trim + lower-case) back to canonical.
func emailVariant(r *rand.Rand, canonical, first, last string) string {
	local, domain, _ := strings.Cut(canonical, "@")
	switch r.IntN(5) {
	case 0:
		return strings.ToUpper(canonical)
	case 1: // capitalised as the person writes their name
		local = strings.Replace(local, strings.ToLower(first), first, 1)
		local = strings.Replace(local, strings.ToLower(last), last, 1)
		return local + "@" + strings.ToUpper(domain[:1]) + domain[1:]
	case 2:
		return " " + canonical + " "
	case 3:
		return canonical + "\t"
	default:
		return "  " + strings.ToUpper(local[:1]) + local[1:] + "@" + domain
	}
}

// Area codes of real US cities. nyaruka/phonenumbers (the version pinned in
// go.mod) accepts every exchange 200-999 under these; the tests check every
// number the generator emits.
var areaCodes = []string{
	"201", "202", "206", "212", "213", "305", "312", "404", "415", "503",
	"512", "602", "617", "646", "702", "713", "718", "720", "801", "917",
}

// phoneSpace is the number of distinct person numbers: area × exchange
// 200-899 × line. Stores use exchanges 900-999, so a store's number is never
// a customer's.
const phoneSpace = 20 * 700 * 10_000

// phoneDigits returns the person's 10-digit national number. Multiplying by a
// prime coprime to phoneSpace permutes the space, so numbers are unique per
// person but do not look sequential.
func phoneDigits(seed int64, i int) string {
	off := derive(seed, saltPhone, 0) % phoneSpace
	n := (uint64(i)*1_000_003 + off) % phoneSpace
	area := areaCodes[n%20]
	n /= 20
	exch := 200 + n%700
	line := n / 700
	return fmt.Sprintf("%s%03d%04d", area, exch, line)
}

// storePhone is the shared number a store's cashiers type when a customer
// gives none: the "new junk" DESIGN section 2 wants quarantined.
func storePhone(store int) string {
	return fmt.Sprintf("%s%03d%04d", areaCodes[store%20], 900+store%100, 1000+store)
}

// phoneVariant formats a 10-digit US number the way some source writes it.
// All of them parse to the same E.164 number with default region US.
func phoneVariant(r *rand.Rand, d string) string {
	switch r.IntN(6) {
	case 0:
		return "+1" + d
	case 1:
		return "(" + d[:3] + ") " + d[3:6] + "-" + d[6:]
	case 2:
		return d[:3] + "-" + d[3:6] + "-" + d[6:]
	case 3:
		return d
	case 4:
		return "+1 " + d[:3] + "-" + d[3:6] + "-" + d[6:]
	default:
		return "1 " + d[:3] + "." + d[3:6] + "." + d[6:]
	}
}

func e164(d string) string { return "+1" + d }

// Junk values real sources send. Every one is blocked by Spine's defaults
// except the store phones, which are valid numbers shared by many people and
// must be caught by quarantine.
var (
	junkAnonymous = []string{"null", "undefined"}
	junkEmails    = []string{"test@test.com", "noemail@noemail.com", "none@example.com"}
	junkDevice    = "00000000-0000-0000-0000-000000000000"
)

// numStores is how many stores the POS channel has.
const numStores = 40

// junkValues lists every junk value the generator may emit, raw (they are
// not normalized: they must never become identifiers).
func junkValues() []canon.Identifier {
	var out []canon.Identifier
	for _, v := range junkAnonymous {
		out = append(out, canon.Identifier{Type: canon.AnonymousID, Value: v})
	}
	for _, v := range junkEmails {
		out = append(out, canon.Identifier{Type: canon.Email, Value: v})
	}
	out = append(out, canon.Identifier{Type: canon.DeviceID, Value: junkDevice})
	for s := range numStores {
		out = append(out, canon.Identifier{Type: canon.Phone, Value: e164(storePhone(s))})
	}
	return out
}

// Catalog of products, prices in cents so that totals are exact.
type product struct {
	sku   string
	name  string
	cents int64
}

var catalog = []product{
	{"SKU-1001", "Trail Running Shoes", 12999}, {"SKU-1002", "Merino Wool Socks", 1899},
	{"SKU-1003", "Rain Shell Jacket", 18950}, {"SKU-1004", "Insulated Bottle", 3495},
	{"SKU-1005", "Daypack 24L", 8900}, {"SKU-1006", "Headlamp", 4299},
	{"SKU-1007", "Fleece Pullover", 7450}, {"SKU-1008", "Camp Mug", 1250},
	{"SKU-1009", "Trekking Poles", 9999}, {"SKU-1010", "Sun Hat", 2899},
	{"SKU-1011", "Base Layer Top", 5500}, {"SKU-1012", "Gift Card", 5000},
	{"SKU-1013", "Water Filter", 3999}, {"SKU-1014", "Sleeping Pad", 11900},
	{"SKU-1015", "Energy Bars (12)", 2388}, {"SKU-1016", "Compression Sack", 1995},
}

// cents renders an amount the way the channels write money: a plain decimal
// with two places, which canon.ParseDecimal reads exactly.
func cents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
