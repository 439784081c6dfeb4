package normalize_test

import (
	"errors"
	"fmt"

	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

func ExampleNormalizer_Normalize() {
	n, err := normalize.New(normalize.DefaultConfig())
	if err != nil {
		panic(err)
	}
	email, _ := n.Normalize(canon.Email, "  Bob@Example.co.uk ")
	phone, _ := n.Normalize(canon.Phone, "(650) 253-0000")
	fmt.Println(email.Value)
	fmt.Println(phone.Value)

	_, err = n.Normalize(canon.Email, "test@test.com")
	fmt.Println(err)
	var ne *normalize.Error
	if errors.As(err, &ne) {
		fmt.Println("dropped by rule", ne.Rule)
	}
	// Output:
	// bob@example.co.uk
	// +16502530000
	// normalize: email: blocked
	// dropped by rule blocked
}

func ExampleConfig_Validate() {
	cfg := normalize.DefaultConfig()
	cfg.DefaultRegion = ""
	cfg.BlockedPatterns = append(cfg.BlockedPatterns, "(")
	fmt.Println(cfg.Validate() != nil)
	// Output: true
}
