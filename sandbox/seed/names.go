package seed

var (
	latinGiven  = []string{"Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Sophia", "Mateo", "Mia", "Ethan", "Chloe", "Leo", "Grace", "Oscar", "Isla", "Hugo", "Clara", "Felix", "Nora", "Theo"}
	latinFamily = []string{"Smith", "Johnson", "Garcia", "Miller", "Davis", "Martin", "Lopez", "Wilson", "Anderson", "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "King", "Wright"}

	japaneseGiven  = []string{"翔太", "陽菜", "蓮", "結衣", "大翔", "美咲", "悠真", "さくら", "湊", "葵"}
	japaneseFamily = []string{"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"}
	romaji         = map[string]string{
		"翔太": "shota", "陽菜": "hina", "蓮": "ren", "結衣": "yui", "大翔": "hiroto", "美咲": "misaki",
		"悠真": "yuma", "さくら": "sakura", "湊": "minato", "葵": "aoi",
		"佐藤": "sato", "鈴木": "suzuki", "高橋": "takahashi", "田中": "tanaka", "伊藤": "ito",
		"渡辺": "watanabe", "山本": "yamamoto", "中村": "nakamura", "小林": "kobayashi", "加藤": "kato",
	}

	latinCompanyStems       = []string{"Zylker", "Northwind", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gringotts"}
	latinCompanySuffixes    = []string{"Inc.", "LLC", "Ltd.", "GmbH", "Corp."}
	japaneseCompanyStems    = []string{"株式会社さくら", "株式会社富士", "株式会社大和", "株式会社青空", "株式会社光", "株式会社みらい"}
	japaneseCompanySuffixes = []string{"商事", "工業", "システム", "物産", "製作所"}

	industries        = []string{"Manufacturing", "Retail", "Software", "Healthcare", "Finance", "Logistics", "Education"}
	latinCities       = []string{"Austin", "Chicago", "Boston", "Denver", "Seattle", "London", "Berlin"}
	japaneseCities    = []string{"東京", "大阪", "名古屋", "福岡", "札幌", "横浜"}
	titles            = []string{"CEO", "CTO", "Purchasing Manager", "Engineer", "Support Lead", "Sales Director", "Analyst", "部長", "課長", "主任"}
	customerTypes     = []string{"Enterprise", "Mid-Market", "SMB", "Trial"}
	productAdjectives = []string{"Smart", "Pro", "Ultra", "Eco", "Compact", "Turbo"}
	productNouns      = []string{"Router", "Sensor", "Printer", "Scanner", "Hub", "Camera", "Speaker"}
	productCategories = []string{"Hardware", "Software", "Service", "Accessory"}
)
