package topic_test

import (
	"fmt"

	"github.com/wsrpc/wsrpc/internal/topic"
)

func ExampleLimits_Pattern() {
	for _, p := range []string{"orders.*.created", "orders.>", "orders..eu", "orders.eu*", "orders.>.eu"} {
		fmt.Println(p, topic.DefaultLimits.Pattern(p))
	}
	// Output:
	// orders.*.created <nil>
	// orders.> <nil>
	// orders..eu pattern "orders..eu": empty token at byte 7
	// orders.eu* pattern "orders.eu*": '*' at byte 9 inside the token "eu*" (a wildcard must be a whole token)
	// orders.>.eu pattern "orders.>.eu": ">" at byte 7 is not the last token
}

func ExampleMatch() {
	fmt.Println(topic.Match("orders.*.created", "orders.eu.created"))
	fmt.Println(topic.Match("orders.>", "orders.eu.created"))
	fmt.Println(topic.Match("orders.>", "orders"))
	// Output:
	// true
	// true
	// false
}

func ExampleCovers() {
	fmt.Println(topic.Covers("chat.>", "chat.*.x"))
	fmt.Println(topic.Covers("chat.*", "chat.>"))
	// Output:
	// true
	// false
}

func ExampleIndex() {
	var ix topic.Index[string]
	ix.Add("orders.eu.created", "exact")
	ix.Add("orders.*.created", "star")
	ix.Add("orders.>", "rest")
	ix.Add("users.>", "other")
	n := 0
	ix.Match("orders.eu.created", func(string) { n++ })
	fmt.Println(n, "of", ix.Len())
	ix.Remove("orders.>", "rest")
	ix.Match("orders.us.created", func(v string) { fmt.Println(v) })
	// Output:
	// 3 of 4
	// star
}
