"""Word lists shared by the rules, as regex fragments (English and Japanese).

Latin words use ASCII-only boundaries (`_B`/`_E`) because Python's ``\\b`` treats kana and
kanji as word characters: ``\\bLINE\\b`` does not match 「LINEで」.
"""

from __future__ import annotations

import re
from typing import Final

_B: Final = r"(?<![A-Za-z0-9])"
_E: Final = r"(?![A-Za-z0-9])"


def word(alternatives: str) -> str:
    """Wrap Latin alternatives in ASCII word boundaries."""
    return _B + "(?:" + alternatives + ")" + _E


def anchor_word(alternatives: str) -> str:
    """Like `word` but with the right boundary only.

    Rule anchors start with a literal so the regex engine can skip ahead on the first
    character; the scanner checks the left boundary of each anchor match itself.
    """
    return "(?:" + alternatives + ")" + _E


_CAPITAL = re.compile(r"(?<!\\)(?<!\(\?)[A-Z]")


def compile_lower(pattern: str) -> re.Pattern[str]:
    """Compile a pattern meant for the lower-cased keyword view (letters lower-cased)."""
    return re.compile(_CAPITAL.sub(lambda m: m.group().lower(), pattern))


# A handle after "line:" (keyword view): a letter and a digit or "_"; not a file name, a
# number or a CSS value.
_LINE_HANDLE: Final = (
    r"\s*[:：]\s*@?(?![0-9]+[.,][0-9])(?![0-9.]+(?:px|em|rem|pt|vh|vw|%))"
    r"(?![a-z0-9_.\-]*\.(?:py|js|ts|tsx|jsx|css|scss|html?|json|txt|md|csv|ya?ml|rb|go|java|"
    r"kt|c|h|cpp|cs|php|sh|xml|ini|cfg|conf|toml|log|sql|rs|swift|vue)(?![a-z0-9]))"
    r"(?=[a-z0-9_.\-]*[a-z])(?=[a-z0-9_.\-]*[0-9_])[a-z0-9_.\-]*[a-z0-9_](?![a-z0-9_\-]|\.[a-z0-9])"
)

def _after(words: tuple[str, ...]) -> str:
    """Lookbehinds (keyword view): right after one of ``words`` (whole) and a space."""
    return "(?:" + "|".join(f"(?<=[^a-z]{w} )|(?<=^{w} )" for w in words) + ")"


# Apps whose names are ordinary English words ("some slack in the schedule", "a good
# signal", "the market outlook"): capitalised they are apps (`APPS_CASED`), in lower case
# only in the messenger sense, after on/via/over/in/to/use/using/my/your/our ("add me on
# slack", "dm me via signal") or before id/handle/username ("my signal id").
_WORD_APPS: Final = r"(?:slack|signal|outlook|teams)(?![a-z0-9])"

# The marketplaces by name ("pay outside Upwork", "ランサーズを通さず"): one list for every
# rule that names them (keyword view, lower case).
MARKETPLACES: Final = "upwork|fiverr|lancers|crowdworks|coconala"  # not "freelancer": a word too
MARKETPLACES_JA: Final = "ランサーズ|クラウドワークス|ココナラ|" + MARKETPLACES

# Messaging apps and their euphemisms.  LINE and X are matched case-sensitively; katakana
# ライン must not be part of a longer katakana word (ガイドライン, オンライン, ラインナップ)
# nor a drawn line (ラインの位置, ラインを太く, ラインを揃えて).
APPS: Final = (
    "(?:"
    + anchor_word(
        r"whats\s?app|telegram|te[il]egram|tg|we\s?chat|discord|disc0rd|chat\s?work|"
        r"kakao(?:\s?talk)?|instagram|insta|ig|facebook|fb|messenger|twitter|viber|"
        r"sk[y*]pe|gmail|g-mail|g mail|yahoo\s?mail|hotmail|icloud|linkedin|linked in|"
        r"microsoft teams|ms teams"
    )
    + r"|ワッツアップ|テレグラム|微信|ウィーチャット|ディスコード|ディスコ(?![ァ-ヺー])|"
    r"チャットワーク|スラック|シグナル|カカオ(?:トーク)?|インスタ(?:グラム)?|フェイスブック|"
    r"メッセンジャー|ツイッター|スカイプ|すかいぷ|ジーメール|リンクトイン|"
    r"(?<![ァ-ヺー])ライン(?![ァ-ヺー])(?![のをがは]?(?:位置|太|細|幅|色|揃|引|調整|長さ|間隔))|"
    r"(?<![ぁ-ゖ])らいん(?=[のではにをがもと]|[^ぁ-ゖ]|$)|"
    + _after(("on", "via", "over", "in", "to", "use", "using", "my", "your", "our", "ur"))
    + _WORD_APPS
    + r"|" + _WORD_APPS[:-len("(?![a-z0-9])")] + r"(?=\s*(?:id|handle|user ?name)(?![a-z]))|"
    r"green app|"
    # the app described, as the place to talk ("hit me up on the app with the green icon";
    # not "the app with the green icon is the one we build")
    r"(?:(?<=on the )|(?<=in the )|(?<=via the )|(?<=use the ))app with the green "
    r"(?:icon|logo|bubble)|緑の(?:アプリ|やつ)|(?:別|他|ほか|外部)の(?:アプリ|ツール|SNS|チャット)|blue[- ]?bird|青い鳥|paper[- ]?plane|紙飛行機|"
    # Lower-case "line" is an app only as someone's "line id" given right after it ("my
    # line id is kota_77", "my line id: kota_77"; not "my line id column").
    r"(?:(?<=[^a-z]my )|(?<=^my )|(?<=[^a-z]ur )|(?<=^ur )|(?<=[^a-z]your )|(?<=^your ))"
    r"line[ \-]?id(?=\s*(?:is\s+|[:：→=は]\s*)[「『\"'(（]?@?[a-z0-9])"
    # ... or followed by ":" and a handle with a letter and a digit or "_", in the messenger
    # sense: the whole line ("line: kota_77", "ⓛⓘⓝⓔ: kota_77"), after "on"/"my" ("add me on
    # line: kota_77") or with id/add/追加/アカウント after it.  Not "line: 42", "line: foo",
    # a file ("Error at line: main_v2.py"), a number or CSS value ("line: 1.5_em") or a
    # config key in a sentence ("line: item_2 in the config").
    r"|(?:(?<![^\n])|(?<=[^a-z]on )|(?<=^on )|(?<=[^a-z]my )|(?<=^my ))"
    r"line(?=" + _LINE_HANDLE + r"\s*(?:[.!。！]\s*)?(?:$|\n))"
    r"|line(?=" + _LINE_HANDLE + r"[^\n]{0,30}?(?:(?<![a-z])(?:id|add)(?![a-z])|追加|アカウント))"
    # ... or a line that is nothing but "line id:" and a handle ("ｌｉｎｅ ＩＤ：ｔａｎａｋａ",
    # "line id: tanaka です"): the id says which line.
    r"|(?<![^\n])line(?=[ \-]?id\s*[:：=→]\s*@?[a-z][a-z0-9_.\-]{2,}(?<![.\-])(?![a-z0-9_.\-])"
    r"\s*(?:$|\n|[.!。！、]|[ぁ-ゖァ-ヺ一-龯]))"
    ")"
)

# LINE, X, Slack, Signal and Outlook are ordinary words unless capitalised; matched on the
# case-preserving view.  "Line" starting a sentence is no app before a typographic or
# chart noun ("Line height is 1.5", "Line breaks", "Line 42").
APPS_CASED: Final = (
    r"(?<![A-Za-z0-9])(?:L[Iil]NE|X|Slack|SLACK|Signal|SIGNAL|Outlook|OUTLOOK|"
    r"Line(?! (?i:heights?|spacing|breaks?|items?|charts?|graphs?|art|weights?|widths?|"
    r"thickness|colou?rs?|numbers?|lengths?|endings?|wrap\w*|feeds?|up|\d)))"
    r"(?![A-Za-z0-9\-])"
)

# Ordinary English words that are never an ID, even where an ID could stand ("LINE is
# fine", "Slack as usual", "the LINE ID is required", "Slack: done"): determiners,
# pronouns, prepositions, and the adjectives, adverbs, participles and time words that
# follow "<app> is/as" in work talk; also any word of six letters or more ending in -ing
# or -ed ("is working", "is blocked", "as discussed"), and the adjective and adverb
# endings -ous, -ful, -less, -able, -ible, -ical, -ive, -ly ("famous", "helpful",
# "affordable", "typical", "intuitive", "apparently").  Compact on purpose (CI has no word
# list): a pure-letter word after a bare "is"/"as" counts as an ID only right after the
# app name (see `APP_ID_NEXT`), so the list need only cover what is said of an app.
ORDINARY_WORDS: Final = (
    # determiners, pronouns, prepositions, conjunctions
    r"the|a|an|my|your|our|their|his|her|its|this|that|these|those|here|there|not|also|on|"
    r"in|at|to|of|for|with|by|from|about|into|over|under|just|still|it|we|you|they|he|she|"
    r"me|us|them|what|where|when|how|why|which|who|whatever|all|any|some|no|none|more|most|"
    r"less|least|only|so|too|very|much|many|both|each|every|either|neither|same|other|"
    r"another|such|and|or|but|if|then|than|yet|mine|yours|ours|theirs|one|"
    # adverbs
    r"now|always|usually|never|often|sometimes|rarely|really|actually|probably|definitely|"
    r"totally|pretty|quite|currently|mostly|mainly|generally|already|again|well|usual|"
    r"before|ever|likely|unlikely|perhaps|maybe|fully|completely|basically|obviously|"
    r"honestly|personally|literally|kind|sort|"
    # adjectives
    r"fine|okay|alright|good|great|better|best|bad|worse|worst|nice|cool|perfect|awesome|"
    r"excellent|easy|easier|easiest|simple|simpler|fast|faster|fastest|quick|quicker|slow|"
    r"slower|free|cheap|cheaper|expensive|paid|popular|common|standard|default|official|"
    r"available|unavailable|possible|impossible|enough|broken|down|up|off|out|busy|full|"
    r"open|new|old|newer|older|latest|outdated|preferable|mandatory|optional|"
    r"necessary|required|fun|convenient|inconvenient|handy|useful|useless|reliable|"
    r"unreliable|stable|unstable|laggy|buggy|annoying|tricky|hard|harder|difficult|"
    r"complicated|different|similar|important|essential|ready|back|gone|dead|safe|unsafe|"
    r"secure|private|public|separate|main|primary|secondary|backup|internal|external|"
    r"temporary|permanent|real|true|false|correct|wrong|right|sure|clear|"
    r"unclear|big|small|huge|heavy|light|bigger|smaller|cleaner|simplest|nicer|"
    r"blocked|banned|paused|used|done|set|shut|fixed|known|given|taken|"
    r"japanese|english|global|local|international|domestic|weird|everywhere|glitchy|flaky|"
    r"offline|online|noisy|overkill|plenty|clunky|messy|obsolete|normal|key|crucial|"
    r"premium|costly|pricey|quiet|spammy|empty|modern|heavier|lighter|safer|riskier|risky|"
    r"ideal|fantastic|poor|solid|decent|sufficient|insufficient|efficient|unpopular|"
    r"illegal|legal|sketchy|shady|lazy|crazy|whose|sadly|forbidden|hidden|chosen|frozen|"
    r"written|proven|"
    # verbs and words that start a request or a reply ("Slack: add me as admin", "LINE:
    # check the channel", "Discord: join the server")
    r"please|pls|add|check|send|join|use|ping|message|dm|call|text|contact|reach|see|ask|"
    r"tell|let|make|get|go|try|read|reply|write|post|share|invite|follow|find|search|look|"
    r"open|click|download|install|update|create|start|stop|wait|talk|chat|meet|note|"
    r"thanks|thank|hi|hello|hey|yes|yeah|nope|sorry|welcome|"
    # time words
    r"today|tomorrow|tonight|yesterday|later|soon|sooner|earlier|noon|night|morning|"
    r"afternoon|evening|weekend|weekday|weekly|daily|monthly|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|"
    # participles, and the suffixes of adverbs and adjectives that rarely end a name
    # (-ly from seven letters: not emily, kelly; -ive after three: not olive, clive)
    r"[a-z]{4,}(?:ing|ed)|[a-z]{5,}ly|[a-z]{2,}(?:ous|ful|less|able|ible|ical)|[a-z]{3,}ive"
)

# Where an ID ends: not inside a longer word; a sentence's full stop may follow ("LINE:
# kota_77.", "my LINE is kotaro.").
_ID_END: Final = r"(?![a-z0-9_\-@]|\.[a-z0-9])"

# A messenger ID (on the keyword view): letters, digits, "." "_" "-", at least three long;
# Skype's "live:" prefix is part of it.
# Not an ordinary word ("my handle is the same as ..."); Discord's "#1234" is part of it.
_ID: Final = (
    r"@?(?!(?:" + ORDINARY_WORDS + r")" + _ID_END + ")"
    r"(?:live:(?:\.cid\.)?)?[a-z0-9][a-z0-9._\-]*[a-z0-9_](?<=[a-z0-9_.\-]{3})(?:#[0-9]{4})?"
)

# What a bare "is"/"as"/"at" must be followed by to mark an ID further on in the line:
# "@", Skype's "live:", or a handle with a letter and a digit, "_" or an inner "."
# ("is tanaka_88", "as kotaro123", "at @kenji_dev"; not "is fine.", "at 3pm", "is 3.5").
_MARKED_HANDLE: Final = (
    r"(?=[「『\"'(（]?\s*(?:@|live:|(?!\d{1,2}(?:[:.]\d\d)?(?:am|pm|h)(?![a-z0-9]))"
    r"(?=[a-z0-9.\-]*[a-z])[a-z0-9.\-]*(?:[0-9_]|\.[a-z0-9])))"
)

# "add me as kotaro", "find me as kotaro", "search for me as kotaro" (after the app name,
# within its window): the word is the name to look up, a handle even of letters only,
# unless an ordinary word or a role ("add me as a collaborator", "add me as admin").
_ME_AS: Final = (
    r"(?:add|find|search for|look for|look up|follow|friend|invite)\s+me\s+as\s+"
    r"(?!(?:" + "|".join((
        "admin", "administrator", "editor", "viewer", "owner", "member", "guest",
        "collaborator", "contributor", "reviewer", "moderator", "developer", "dev",
        "maintainer", "manager", "friend", "contact", "user", "tester", "designer", "writer",
        "client", "worker", "partner", "teammate", "colleague", "assistant", "lead", "team",
        "participant", "speaker", "host", "cohost", "co-host", "approver", "assignee",
        "watcher", "follower", "subscriber", "recipient", "cc", "bcc")) + r")s?" + _ID_END + ")"
)

# A messenger ID written after the app name, searched for within a short window: "ID は
# sakura_0415", "My Discord is pixelfox_88", "find me at @kenji_dev", "→kota_77".  A ":" or
# "→" glued to a word ("brief: should") is no marker here; right after the app name it is
# (see `APP_ID_NEXT`).
APP_ID: Final = (
    r"(?<![a-z0-9])(?:(?:id|handle|user ?name|ユーザー名)\s*(?:は|:|：|→|=|is)?\s*|"
    r"[:：→=]\s*|" + _ME_AS + r"|(?:is|as|at)\s+" + _MARKED_HANDLE + r")"
    r"[「『\"'(（]?\s*(?P<id>" + _ID + ")"
    r"|(?P<handle>(?<![a-z0-9._])@[a-z0-9_][a-z0-9._]{2,})"
)

# An ID right after the app name (tried there only): after ":", "→", "=" or は ("LINE:
# kota_77", "WeChat: tnk88", "LINEはkota_77", "Skype: live:tanaka"), after "is"/"as" (also
# "account is", "name is") when no ordinary word ("my LINE is kotaro", "on LINE as
# kotaro123"; not "LINE is fine"), or after spaces only when it looks like a handle, with
# a letter and a digit, "_" or "." ("LINE kota_77"; not "LINE 42", not "LINE tomorrow").
_NEXT_IS: Final = (
    r"\s+(?:(?:account|name)\s+)?(?:is|as)\s+[「『\"'(（]?\s*(?=@?[a-z0-9._\-]*[a-z])"
)
APP_ID_NEXT: Final = (
    r"(?:\s*[:：→=は]\s*[「『\"'(（]?\s*|" + _NEXT_IS + "|"
    r"\s+(?=[a-z0-9._\-]*[a-z])(?=[a-z0-9._\-]*[0-9_.][a-z0-9_]))"
    r"(?P<id>" + _ID + r")" + _ID_END
)

# An ID right after the app name that shows intent by itself (with no other cue), like a
# handle next to the name: a word that is no ordinary one (`ORDINARY_WORDS`) after "is"/
# "as" ("my LINE is kotaro", "LINE as kotaro") or after は ending the phrase
# ("LINEはkotaroです"; not "Slackはfreeプランです", "LINEはjapanで人気").
APP_WORD_ID_NEXT: Final = (
    r"(?:" + _NEXT_IS + r"|\s*は\s*[「『\"'(（]?\s*(?=@?[a-z0-9._\-]*[a-z]))"
    + _ID + _ID_END
    + r"(?!\s*(?:[ァ-ヺー一-龯々]|(?!です|だ)[ぁ-ゖ]))"
)

# An ID given (or promised) after the app name in a later sentence of the same message,
# where the app name's own sentence has no cue: "LINEならできます。IDは tanaka_1988 です",
# "LINE works. My ID is tanaka88", "Discordならいけます。IDは後ほどお伝えします", "I'll send
# my ID". The ID word must start its phrase: not "チケットIDは PRJ_123", "the order id is
# abc_123". A handle has a letter and a digit or "_" (not "ID: 12345", not "ID is here").
_FOLLOW_HANDLE: Final = (
    r"@?(?=[a-z0-9._\-]*[a-z])(?=[a-z0-9._\-]*[0-9_])[a-z0-9][a-z0-9._\-]{2,}(?:#[0-9]{4})?"
)
_ID_WORD: Final = (
    r"(?:(?<![a-z0-9])(?:my|our)\s+|(?:私|僕|わたし|自分|こちら)の"
    # (not a word's "id" in the same line: "user id", "the id"; a new line, such as the
    # sender's next message, may start with it)
    r"|(?<![a-z0-9ァ-ヺー一-龯々])(?<![a-z][ \t\u3000]))"
    r"(?:id|ｉｄ|handle|user ?name|ユーザー名|アカウント名?)"
)
APP_ID_FOLLOWS: Final = (
    _ID_WORD
    + r"(?:\s*(?:は|:|：|→|=|is)\s*[「『\"'(（]?\s*(?P<id>" + _FOLLOW_HANDLE + r")"
    r"(?![a-z0-9._\-@])"
    r"|\s*(?:は|を)?\s*(?:後で|あとで|後ほど|のちほど|すぐ|今から|これから)?\s*"
    r"(?:お?送り(?:ます|しま)|送ります|送るね|送信しま|お伝えしま|伝えま|お知らせしま|"
    r"教えま|教えるね|貼りま|貼っておきま|載せま|dmしま|dmで送))"
    r"|(?<![a-z0-9])(?:i'?ll|i will|let me|i can|i'?m going to|gonna)\s+"
    r"(?:send|give|share|drop|dm|text|message)\s+(?:(?:it|you|them)\s+)?(?:to you\s+)?"
    r"(?:my|the)\s+(?:id|handle|user ?name)(?![a-z])"
)

# Words around an app name that show the sender wants to connect there.
APP_INTENT: Final = (
    word(
        r"add (?:me|you)|find me|reach (?:me|out)|contact me|message me|msg me|dms?|"
        r"text me|ping me|hit me up|chat (?:on|there|with me)|talk (?:on|there|over)|"
        r"move (?:to|over|the chat)|switch to|continue (?:on|there|in)|"
        r"let'?s (?:use|move|talk|chat|continue|connect)|my (?:id|handle|username|account)|"
        r"id|handle|user ?name|search (?:for|me)|invite|join|do you (?:use|have)|"
        r"are you on|you on|i'?m on|on \S+ as|easier|quicker|faster|icon|qr|"
        # not "I'll reply here"
        r"reply(?! (?:here|in this (?:chat|thread)|on (?:this|the) platform))|"
        r"friend request|scan|same (?:user ?name|name|handle|id)|connect|"
        r"(?:video |voice )?calls?|hop on|jump on|"
        # a (fake) recruiter's interview held there, not the work's user interviews
        r"(?:for|to) (?:the|an|your|a) (?:job )?interview|"
        r"(?<!user )interviews? (?:will be|is|are) (?:on|via|in|held|conducted|done)|"
        r"onboarding (?:on|via|chat|call)|"
        r"(?:(?:send|drop) me an?|leave me an?) (?:message|msg|line|dm|text|note) "
        r"(?:on|via|in|over|at|through)|write (?:to )?me (?:on|via|in|over|at|through)"
    )
    # ":" and a word that is no ordinary one ("Slack: kota_77"; not "Slack: done")
    + r"|[:：→=]\s*@?(?!(?:" + ORDINARY_WORDS + r"|please|thanks|sorry|todo|tbd)" + _ID_END
    + r")[A-Za-z0-9_.]{3,}|@[A-Za-z0-9_]{3,}"
    # "is"/"as" and a handle: a letter and a digit, "_" or an inner "." (not "is fine.",
    # "is 3.5", "is 3pm")
    r"|(?<![A-Za-z])(?:is|as)\s+@?(?!\d{1,2}(?:[:.]\d\d)?(?:am|pm|h)(?![A-Za-z0-9]))"
    r"(?=[A-Za-z0-9_.]*[A-Za-z])[A-Za-z0-9]*(?:[_\d]|\.[A-Za-z0-9])[A-Za-z0-9_.]*"
    r"|ＩＤ|アカウント|追加|友だち|友達|検索|連絡|やり取り|やりとり|話し|話せ|招待|参加|面接|面談|"
    r"ＤＭ|ＱＲ|お使い|使って|やって(?:ます|い|る(?!途中|最中|ところ))|持って|お持ち|申請|出てきます|交換|"
    r"教えて|ユーザー名|表示名|でお送り|スムーズ|繋が|つなが|通話|フォロー|"
    # a message asked for there, or the channel chosen ("メッセージはLINEでお願いします")
    r"メッセージ(?:を)?(?:ください|下さい|送って|お送り|いただ|頂|お願い|くれ|ちょうだい)|"
    r"直接|(?:に|へ)(?:送って|送信|お送り)|"
    r"(?:メッセージ|ご?連絡|やり取り|やりとり|返信|お返事)は[^。\n]{0,20}?で(?:お願い|ください|下さい)|"
    # "the same (name, ID)", not a look ("同じデザインに", "同じような")
    r"同じ(?!(?:ような|ように|よう|感じ|デザイン|色|形|サイズ|レイアウト|仕様))"
)

# The app is the subject of the work, not a channel between the parties.
APP_SUBJECT: Final = (
    word(
        r"bots?|api|sdk|webhooks?|integrations?|notifications?|stickers?|official|"
        r"business|mini-?programs?|templates?|carousel|brand|posts?|posting|recording|"
        r"webinars?|translat\w*|flyers?|buttons?|lp|banners?|ads|campaign|rich menu|"
        r"article|plugin|widget|embed|app store|feature|password|login|log in|"
        # parts of a page, a server or a program the worker builds ("the Skype icon in
        # the footer", "Twitter cards", "the Discord role is admin_2024", "a command that
        # makes a Discord invite URL", "LINE user IDs in the DB")
        r"footer|header|sidebar|navbar|cards?|og|meta tags?|roles?|icon (?:set|pack|font)s?|"
        r"svg|(?:slash )?commands?|db|database|schema|calendars?|fields?|columns?|inputs?|"
        r"automat\w*|ui|ux"
    )
    + r"|連携|通知|スタンプ|公式|ミニプログラム|テンプレ|カルーセル|投稿|配信|録画|"
    r"ウェビナー|翻訳|英訳|和訳|チラシ|ボタン|バナー|広告|記事|リッチメニュー|"
    r"ボット|開発|実装|パスワード|ログイン|フッター|ヘッダー|サイドバー|ロール|"
    r"コマンド|データベース|カレンダー|予定表|要件|運用|漫画|マンガ|シーン|スクリプト|"
    r"スクレイパー|自動|導線|表示を(?:改善|修正|変更|調整)"
)

# The app is used for another job and the sender answers here ("I'm on Slack all day for
# another client, but I'll answer here", "Slackは別案件で使っていますが、こちらでお返事します"):
# the app is mentioned, not proposed.  Both parts are needed ("add me on LINE kota_77, I
# use it for another client too" is a proposal).
APP_ELSEWHERE: Final = (
    _B + r"(?:for|with|on) (?:another|other|a different) (?:clients?|projects?|jobs?|teams?)"
    r"[^.!?\n]*?" + _B + r"(?:reply|answer|respond|get back to you)\w*(?: to you)? "
    r"(?:here|in this (?:chat|thread)|on (?:this|the) platform)" + _E
    + r"|(?:別(?:の)?案件|他の案件|別のクライアント|他のクライアント)[^。\n]*?"
    r"こちら(?:の(?:チャット|メッセージ|スレッド))?で(?:お?返事|返信|回答|お答え)"
)

# X (capitalised) as a coordinate, an axis or a placeholder name, not the app: "X is 100px
# and Y is 40px", "X: 120, Y: 80", "X座標", "Option X is easier", "feature X".
NOT_X_APP: Final = (
    r"(?<![a-z0-9])[yz]\s*(?:[:：=]|is|to)?\s*-?\d|" + word(r"axis|axes|coordinates?")
    + r"|座標|[xyXY]軸|"
    + word(
        r"(?:option|feature|plan|version|type|model|step|case|method|pattern|product|"
        r"company|client|user|project|phase|size|layout|design|variant|item|point|"
        r"scenario|brand|team|person|player|mr|ms|dr) x"
    )
)

# Quoted text (a phrase to translate, a button label) is content, not a message.
QUOTED: Final = (
    r"「[^」\n]*」|『[^』\n]*』|“[^”\n]*”|\"[^\"\n]*\"|(?<![A-Za-z])'[^'\n]*'(?![A-Za-z])"
)

# Refusing an off-platform proposal is never an offence.
REFUSAL: Final = (
    word(
        r"(?:can'?t|cannot|can not|won'?t|will not|unable to|not able to|don'?t|do not|never)\s+"
        r"(?:accept|agree|deal|contract|move|share|give|send|provide|use|exchange|"
        r"do (?:that|this|it|direct|deals?|business|contracts?)|"
        r"(?:work|go|pay|trade|meet) (?:outside|off|directly|direct|privately|elsewhere))|"
        r"not allowed|against the (?:terms|rules|tos|policy)|not permitted"
    )
    # The speaker refusing, not a negated consequence ("手数料は発生しません") or a
    # concession ("禁止でもLINEならOK", "LINE使ってないならWhatsAppは？"): しません only
    # after a particle or a verb of dealing, 禁止 only as a statement, 使っていない only
    # ending the clause.
    + r"|できません(?!か)|できかねます|致しかねます|いたしかねます|お受けできません|お断り|"
    r"規約違反|ご遠慮|控え(?:ます|させて|て(?:ください|下さい|おり|います)|ましょう)|"
    r"(?:のは|のも|は)困ります|禁止(?:されて(?:い|お)|です|となって|して(?:い|お)|事項|(?=[。.!！\n]|$))|"
    r"(?:(?<=[はをも])|(?<=一切)|(?<=契約|取引|交換|共有|連絡|対応|利用|使用|登録|追加|返信)|"
    r"(?<=お伝え|お教え|お受け)|(?<=やり取り|やりとり))(?:いた|致)?しません(?!か)|"
    r"しておりません|していません|"
    r"(?:使|や)って(?:い)?ない(?![な])(?!の[でな])|(?:使|や)っておりません|(?:使|や)っていません"
)

# The payment goes through the platform itself.
ON_PLATFORM: Final = (
    word(
        r"(?:to|through|via|on|in|using|from) (?:the |this )?(?:platform|escrow|site|"
        r"marketplace)|escrow|milestones?|platform'?s|settings|profile settings"
    )
    # (its fee is no sign of dealing on it: "プラットフォームの手数料が高いので")
    + r"|プラットフォーム(?:経由|から|を通|上|の(?!手数料|利用料|システム利用料)|へ|に)|サイト経由|仮払い|エスクロー|"
    r"マイページ|マイルストーン|システム利用料"
)

# The payment or fee is content of the work (a checkout to build, an article, an LP).
PAYMENT_SUBJECT: Final = (
    word(
        r"integrations?|api|gateway|sdk|checkout|buttons?|article|campaign|sandbox|"
        r"implement\w*|plugin|landing page|lp|page|banner|webhook|test card|test mode"
    )
    + r"|記事|キャンペーン|決済テスト|サンドボックス|実装|ボタン|表示|掲載|"
    r"LP|ＬＰ|バナー|ページ|開設"
)

# Asking the other party for something.
REQUEST: Final = (
    word(
        r"send|share|give|provide|tell|what(?:'s| is| are)|need|upload|paste|attach|"
        r"submit|let me (?:know|have)|can i (?:have|get)|could i (?:have|get)|"
        r"may i (?:have|get)|your|ur|require[sd]?|forward|scan"
    )
    + r"|教えて|お知らせ|お教え|送って|お送りください|送信して|送付して|添付して|添付を|"
    r"提出|お願い|ください|下さい|いただけ|頂け|必要|記入して|伺え|お伺い"
)

# The personal data is the subject of the work (a form, a survey, an article, a redaction).
PII_SUBJECT: Final = (
    word(
        r"forms?|fields?|pickers?|screens?|survey|article|templates?|validation|columns?|"
        r"csv|placeholders?|dummy|test|sandbox|stripe|blur|privacy|regex|office|company|"
        r"companies|customers?|end[- ]users?|reset|zip|staging|project notes|settings|"
        r"mask|redact\w*|onboarding screen|ui|database|app|apps|collect|"
        # the upload feature the worker builds ("the passport photo upload feature is
        # done"; not a pretext such as "it is for a verification feature")
        r"upload (?:features?|components?|modules?|endpoints?|widgets?|buttons?)|uploader"
    )
    + r"|アップロード(?:機能|ボタン|画面)を?(?:実装|作成|追加|修正)|欄|フォーム|画面|アンケート|記事|制度|テンプレ|ダミー|テスト|サンドボックス|"
    r"モザイク|伏せ字|読み上げ|表記|マクロ|公式サイト|代表番号|店舗|顧客|リセット|"
    r"解凍|マイページ|設定|入力しないで|住所録|登録済み|本人確認済み|アプリ|会員登録"
)

PRICE: Final = (
    r"[$¥€£]\s?\d|\d[\d,.]*\s?(?:円|ドル|万円|千円)|"
    + word(r"usd|jpy|eur|dollars?|yen")
    + r"\s?\d|\d\s?"
    + word(r"usd|dollars?|yen")
)
