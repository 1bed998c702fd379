"""The rule table: stable rule ids, their wording, and the keyword rules ("cue rules").

A cue rule fires on an ``anchor`` match when, within the same sentence and ``window``
characters of it, the ``cue`` pattern is found (if any) and the ``block`` pattern is not.
Rules marked ``refusable`` are dropped in a sentence that refuses the proposal.
Detectors that need more than regexes (email, phone, links) live in `contacts`/`phones`.
All patterns run on the keyword view (base → squeeze → deleet), case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from moderation import lexicon as lx
from moderation.findings import CONTACT, DEAL, EXPENSE, PII, Category, RuleInfo, Severity

W = lx.word


def _info(rule: str, category: Category, severity: Severity, ja: str, en: str) -> RuleInfo:
    return RuleInfo(rule, category, severity, ja, en)


RULES: Final[dict[str, RuleInfo]] = {
    r.id: r
    for r in (
        _info("contact.email", CONTACT, "high", "メールアドレスの共有", "Email address shared"),
        _info("contact.phone", CONTACT, "high", "電話番号の共有", "Phone number shared"),
        _info("contact.link", CONTACT, "high", "外部チャット・通話への招待リンク",
              "Invitation link to an outside chat or call"),
        _info("contact.messenger_id", CONTACT, "high", "外部メッセンジャーのIDの共有",
              "Messenger ID shared"),
        _info("contact.messenger", CONTACT, "medium", "外部メッセンジャーへの誘導",
              "Invitation to talk on an outside messenger"),
        _info("contact.request", CONTACT, "medium", "連絡先（メール・ID）の要求",
              "Asks for an email address or messenger ID"),
        _info("contact.phone_request", CONTACT, "medium", "電話番号の要求",
              "Asks for a phone number"),
        _info("contact.pointer", CONTACT, "medium", "連絡先の在りかを示唆（画像・PDF・同じ名前など）",
              "Points to contact details elsewhere (image, PDF, same name)"),
        _info("contact.channel", CONTACT, "medium", "メール・電話・SMSでの連絡への誘導",
              "Asks to continue by email, phone or SMS"),
        _info("deal.direct", DEAL, "high", "直接契約・直接支払いの提案",
              "Proposes a direct contract or payment"),
        _info("deal.bypass", DEAL, "high", "プラットフォーム外での取引の提案",
              "Proposes to deal outside the platform"),
        _info("deal.fee_avoidance", DEAL, "medium", "手数料回避の提案",
              "Proposes to avoid the platform fee"),
        _info("deal.external_payment", DEAL, "high", "外部の決済手段での支払い",
              "Payment through an outside method (PayPal, bank transfer, crypto, cash)"),
        _info("deal.bank_details", DEAL, "high", "振込先口座の提示", "Bank details for a direct transfer"),
        _info("deal.separate_payment", DEAL, "medium", "報酬の一部を別途支払う提案",
              "Proposes to pay part of the fee separately"),
        _info("pii.phone_request", PII, "medium", "電話番号の要求", "Asks for a phone number"),
        _info("pii.home_address", PII, "medium", "住所の要求", "Asks for a home address"),
        _info("pii.date_of_birth", PII, "medium", "生年月日の要求", "Asks for a date of birth"),
        _info("pii.id_document", PII, "high", "身分証画像の要求", "Asks for an ID document image"),
        _info("pii.my_number", PII, "high", "マイナンバー・社会保障番号の要求",
              "Asks for a My Number or a social security number"),
        _info("pii.bank_account", PII, "high", "銀行口座情報の要求", "Asks for bank account details"),
        _info("pii.password", PII, "high", "パスワード・ログイン情報の要求",
              "Asks for a password or login details"),
        _info("pii.one_time_code", PII, "high", "認証コードの要求", "Asks for a one-time code"),
        _info("pii.card", PII, "high", "クレジットカード情報の要求", "Asks for card details"),
        _info("pii.personal_details", PII, "medium",
              "勤務先・収入・顔写真・秘密の質問の答えなどの要求",
              "Asks for personal details (employer, income, a face photo, security answers)"),
        _info("expense.upfront_fee", EXPENSE, "high", "登録料・講座代・保証金などの負担要求",
              "Demands a fee, deposit, course or membership from the worker"),
        _info("expense.purchase_on_behalf", EXPENSE, "high", "購入代行・立て替えの要求",
              "Asks the worker to buy or advance money on the client's behalf"),
        _info("expense.mlm", EXPENSE, "high", "勧誘型（MLM）の条件", "MLM-style recruitment"),
    )
}


@dataclass(frozen=True, slots=True)
class CueRule:
    rule: str
    anchor: re.Pattern[str]
    cue: re.Pattern[str] | None = None
    block: re.Pattern[str] | None = None
    window: int = 60
    refusable: bool = True
    skip_quoted: bool = False
    cased: bool = False  # anchor runs on the case-preserving view
    cross_sentence: bool = False  # the cue may sit in a neighbouring sentence
    id_pattern: re.Pattern[str] | None = None  # reports contact.messenger_id on the ID
    also: tuple[str, ...] = ()  # further rule ids reported for the same match
    wide_block: re.Pattern[str] | None = None  # like ``block``, anywhere in the scanned text


def _c(pattern: str) -> re.Pattern[str]:
    return lx.compile_lower(pattern)


def _a(alternatives: str) -> str:
    return lx.anchor_word(alternatives)


_REQUEST = _c(lx.REQUEST)
_APP_ID = _c(lx.APP_ID)
_PII_SUBJECT = _c(lx.PII_SUBJECT)
# The payment method is a feature of what is built (a shop, a checkout, a marketplace).
_PAY_FEATURE = (
    W(r"(?:shop|store|site|app|checkout|cart)s? (?:should|must|will|to|can) (?:accept|support|offer)|"
      r"payment (?:methods?|options)|customers?|buyers?|end[- ]users?")
    + r"|決済(?:方法|手段|機能|画面|システム)|お?支払い?方法|お客様|ユーザー|購入者|"
    r"マーケットプレイス|画面|機能|開発|に対応して|を追加して|"
    # a form the worker builds ("振込先の入力フォームを作成します")
    + W(r"(?:input |form )fields?") + r"|入力(?:フォーム|欄)"
)
_PAY_BLOCK = _c(lx.ON_PLATFORM + "|" + lx.PAYMENT_SUBJECT + "|" + _PAY_FEATURE)
_MY = r"(?:your|ur|ご|あなたの|お)"

_EXPENSE_BLOCK = _c(
    W(
        # a field of a form the worker builds ("the registration fee field must accept
        # decimals")
        r"(?:fee|price|amount|cost) (?:fields?|columns?|inputs?)|"
        r"(?:won'?t|don'?t|do not|will not|never) (?:need to |have to )?(?:buy|pay|purchase)|"
        r"no need to (?:buy|pay|purchase)|already (?:purchased|bought|paid)|"
        r"we(?:'ll| will)? (?:cover|provide|pay for|buy|purchase)|on our (?:side|account)|"
        r"free of charge|for (?:the|our) (?:lp|landing page|page|banner|site)|escrow|funded|"
        r"i(?:'ll| will)? (?:make|pay|fund|send|put down) (?:the |a )?deposit|"
        r"(?:do|would) you (?:need|want|require) (?:a |the )?deposit|"
        r"deposit (?:is|has been|was) (?:paid|made|funded|sent)|"
        r"(?:sales|landing|product) page|page (?:for|you build|you make)|"
        r"included in (?:your|the|our) (?:quote|price|estimate|budget|fee)|"
        # the prices are content: a pricing table the worker builds or edits
        r"pricing (?:table|section|page|grid)|price (?:list|table)|rate card|"
        # a fee in a test payment ("the test fee in the sandbox checkout is $1")
        r"sandbox|test mode"
    )
    + r"|購入済み|当方で|こちらで(?:購入|用意|負担|お支払)|弊社で|弊社が負担|無料|不要|"
    r"必要はありません|表示|掲載|記事|LP|ＬＰ|仮払い|ページ(?:を|に|の)|見積もり?に含|料金表|価格表|"
    r"サンドボックス|テストモード"
)

# The package is the work itself, priced by the worker ("$1,299 for the whole package of
# 12 pages"), not one the worker must buy.
_WORK_PACKAGE = W(
    r"(?:package|bundle) (?:of|with|includes?|covers?) (?:\d+|all|the) ?(?:\w+ )?"
    r"(?:pages?|articles?|posts?|images?|illustrations?|designs?|logos?|banners?|videos?|"
    r"photos?|revisions?|hours?|words?|screens?|slides?)"
)

# The fee is content of a page the worker builds (in any sentence of the message).
_WORK_PAGE = _c(
    _a(r"(?:sales|landing|event|course|product|signup|sign-up|membership|pricing) page|"
       r"page you build")
    + r"|(?:案内|告知|紹介|募集|販売|申込|申し込み|ランディング)ページ"
    # a page the worker makes ("講座ページのバナーを作成します。オンライン講座 4,980円")
    r"|ページ(?:の(?:バナー|デザイン|レイアウト)|を(?:作成|制作|デザイン|更新|修正))"
    # an announcement the worker makes of the plan ("月額980円のプランの告知バナーを作って")
    # (led by the rarer words, the plan's noun checked behind them: fast to search)
    r"|(?:告知|案内|紹介|募集|販売|宣伝)(?:(?<=プランの..)|(?<=会員の..)|(?<=講座の..)"
    r"|(?<=サロンの..)|(?<=コースの..)|(?<=セミナーの..))"
    r"(?=(?:用の?)?(?:バナー|チラシ|画像|ページ|記事|投稿|動画|メール|LP|ＬＰ))"
    # (no word boundary before: a pattern led by literals is searched fast)
    + r"|(?:banner|flyer|post|email|video)s? (?:for|announcing|promoting) (?:the|our|a) "
    r"(?:new )?(?:plan|course|membership|program(?:me)?|subscription)"
)

# The code is a feature the worker builds (its screen, its field), not one to hand over.
_CODE_FEATURE = _c(r"\b(?:ui|screen|field|form|design)\b|画面|デザイン|欄|実装")

CUE_RULES: Final[tuple[CueRule, ...]] = (
    # ---- contact_exchange -----------------------------------------------------------
    CueRule(
        "contact.messenger",
        _c(lx.APPS),
        cue=_c(lx.APP_INTENT),
        block=_c(lx.APP_SUBJECT + "|" + lx.APP_ELSEWHERE),
        window=45,
        skip_quoted=True,
        id_pattern=_APP_ID,
    ),
    CueRule(
        "contact.messenger",
        re.compile(lx.APPS_CASED),
        cue=_c(lx.APP_INTENT),
        block=_c(lx.APP_SUBJECT + "|" + lx.APP_ELSEWHERE + "|" + lx.NOT_X_APP),
        window=45,
        skip_quoted=True,
        cased=True,
        id_pattern=_APP_ID,
    ),
    CueRule(
        "contact.request",
        _c(
            _a(r"what'?s|what is|send|share|give|drop|tell|can i (?:have|get)|could i (?:have|get)|"
              r"may i (?:have|get)|need|let me (?:have|know)")
            + r"\s+(?:me\s+)?(?:your|ur)\s+(?:personal\s+|private\s+|direct\s+)?"
            r"(?:e-?mail|email address|handle|user ?name|id|contact(?: details| info)?|skype|"
            r"line|whatsapp|telegram|discord|instagram|insta|ig|fb|tg|snap(?:chat)?|wechat|"
            r"kakao|socials?|メールアドレス|メアド)(?![a-z0-9])"
            r"|(?:メール(?:アドレス)?|メアド|アカウント名|ユーザー名|LINE\s?ID|連絡先)"
            r"(?:だけ|も|の方)?を?\s*(?:教えて|お知らせ|お教え|伺え|お送りください|送って)"
            # Proposed, not declined ("連絡先の交換は不要です"; "Do not exchange contact
            # details" is a refusal); "exchange numbers" only with people ("exchange numbers
            # between columns" is spreadsheet work).
            r"|(?:連絡先|メアド|メールアドレス|電話番号|携帯番号)(?:を|の)?"
            r"(?:交換|教え合|共有し(?:ませ|ましょ))(?!(?:の)?(?:機能|ボタン|画面|フォーム|欄|UI))"
            r"(?!(?:は|が|も|を|の)?(?:一切)?(?:不要|必要(?:ない|ありません|ございません)|"
            r"しない|しません(?!か)|できません|禁止|ご遠慮|お断り|NG|控え|いたしかね|致しかね))"
            r"|" + _a(r"exchange (?:our |each other'?s )?(?:contacts|contact (?:info|details)|"
                      r"phone numbers|emails|e-mails|numbers with (?:me|you|us))")
        ),
        window=0,
    ),
    CueRule(
        "contact.phone_request",
        _c(
            _a(r"what'?s|what is|send|share|give|can i (?:have|get)|could i (?:have|get)|"
              r"may i (?:have|get)|need|tell me|let me (?:have|know)|drop")
            + r"[^.?!\n。]{0,20}(?:your|ur)\s+(?:personal |private |mobile |cell )?"
            r"(?:phone|mobile|cell|telephone|whatsapp number|digits|電話番号|携帯)"
            r"|(?:電話番号|携帯番号|携帯電話|ケータイ|お電話番号|電話)(?:だけ|も|と[^。\n]{0,15})?を?\s*"
            r"(?:教えて|お知らせ|お教え|お願い|送って|いただけ|頂け|伺え|お伺い|伺って|お聞き)"
            # the phone, then the number ("電話で話したほうが早いので、番号教えてもらえますか")
            r"|お?電話(?:で|の方が|のほうが)[^。\n]{0,20}番号(?:だけ|も)?を?\s*"
            r"(?:教えて|お知らせ|お教え|伺え)"
        ),
        window=0,
        also=("pii.phone_request",),
    ),
    CueRule(
        "contact.pointer",
        _c(
            _a(r"e-?mail|contact(?: details| info)?|number|address|id|handle|mine")
            + r"\s+(?:address\s+)?is\s+(?:in|on)\s+"
            + r"[^.\n]{0,25}?" + W(r"pdf|attach\w*|file|profile|bio|portfolio|website|site|cv|"
                                   r"resume|image|picture|signature")
            + "|" + _a(r"google my name|look me up|search me up|my (?:web)?site has a contact|"
                      r"same (?:user ?name|handle|name|id|nick(?:name)?) as (?:here|on here|this)|"
                      r"qr code")
            + r"|連絡先[はを]?[^。\n]{0,20}(?:プロフィール|画像|ＱＲ|QR|PDF|添付|ファイル|署名)"
            # the number or the address on one's own profile ("番号はプロフィールに書いてあります")
            r"|(?:電話番号|番号|メアド|メールアドレス)[はを]?[^。\n]{0,10}(?:プロフィール|自己紹介|署名)"
            r"|(?:ここ|こちら)(?:の|と)(?:名前|表示名|ユーザー名|アカウント名|ID)?[^。\n]{0,8}同じ"
            r"|(?:ここ|こちら)の(?:名前|表示名|ユーザー名)の(?:後ろ|前|あと)"
            r"|(?:QR|ＱＲ)(?:コード)?[^。\n]{0,20}(?:読み取|追加|友だち|友達|スキャン|連絡)"
        ),
        cue=_c(W(r"scan|add|contact|connect|me|my|find") + r"|読み取|追加|連絡|同じ|名前|後ろ|前|"
               r"書いて|記載|載せて|載って"),
        # A QR code that is the work ("ＱＲの読み取りテストお願いします").
        block=_c(lx.APP_SUBJECT + "|" + W(r"test|testing|tests|generat\w*|qa|users|each other")
                 + r"|テスト|検証|動作確認|生成"),
        window=40,
    ),
    CueRule(
        "contact.channel",
        _c(
            _a(r"(?:e-?mail|mail|text|call|sms|ring|phone|whats\s?app)\s+me(?!\s+(?:here|on here))|"
              # "write me a summary" is work; "write me an email" is not
              r"write\s+me(?!\s+(?:here|on here))(?!\s+(?:a|an|the|some|up)\s+"
              r"(?!(?:e-?mail|mail|message|line|note|text)\b))|"
              r"(?:write|message|contact|reach)\s+me\s+(?:there|at|via|by)|"
              r"(?:continue|continuing|talk|talking|chat|chatting|discuss|communicate|"
              r"communicating|move|switch)\s+(?:this\s+)?"
              r"(?:by|via|over|to)\s+(?:e-?mail|phone|sms|text)")
            + r"|(?:ショートメール|ＳＭＳ|SMS|お電話|メール)(?:で|に|を)?(?:お願い|ください|下さい|"
            r"ご連絡|連絡|やり取り|やりとり|お話|話し)"
            # a call proposed ("電話で話しませんか"), not one reported ("電話で話した内容")
            r"|(?<!お)電話で(?:お)?(?:話し|相談し|打ち合わせし|連絡し)(?:ませんか|ましょう|たい)"
            # one's own address or phone, not the thread ("個人のメールに送ってください")
            r"|(?:個人|プライベート|私用)の(?:メール|アドレス|メアド|携帯|電話)(?:に|へ|まで|で)"
            r"|(?:私|僕|自分)の(?:メール|アドレス|メアド)(?:に|へ|まで)"
            # one's own website's contact form ("私のHPのお問い合わせフォームからご連絡ください")
            r"|(?:私|僕|自分|弊社|当社|うち)の(?:HP|ＨＰ|ホームページ|サイト|ウェブサイト|Webサイト)"
            r"(?:の)?(?:お?問い?合わせ(?:フォーム)?|フォーム)(?:から|より|で)(?:ご)?"
            r"(?:連絡|依頼|相談|お問い?合わせ)|"
            + _a(r"(?:contact|reach|message|email)\s+(?:me|us)\s+(?:through|via|on|using)\s+"
                 r"(?:my|our)\s+(?:website|site|web ?page|contact form|portfolio site)")
        ),
        # ("faster than this chat" is leaving it)
        block=_c(r"(?<!than )here|on the platform|(?<!than )this chat|プラットフォーム|"
                 r"こちらのメッセージ|こちらのチャット|このチャット|届いた|届き|"
                 # the site's customers, not the two parties ("お客様と電話で打ち合わせ
                 # したい場合の予約ページ")
                 r"お客様|顧客|ユーザー|(?:したい|たい)(?:場合|方|人|とき|時)"),
    ),
    # ---- off_platform_deal ----------------------------------------------------------
    CueRule(
        "deal.direct",
        _c(
            _a(r"pay(?:ing)?\s+(?:you|me)?\s*(?:\S+\s+){0,3}?directly|"
              r"direct(?:ly)?\s+(?:contract|contractor|payment|deal|agreement|hire)|"
              r"go(?:ing)?\s+direct|(?:hire|work with|contract with) you directly|"
              r"directly (?:pay|hire|contract)|"
              # this job here, the next ones not ("finish this on Fiverr, the next ones directly")
              r"(?:next|future|other|remaining|later) (?:jobs?|projects?|ones|orders?) "
              r"(?:directly(?! (?:after|before|to|in|on|into|from|via|through|with))|direct|"
              r"outside|off (?:the )?(?:site|platform))")
            + r"|" + _a(r"invoice (?:me|you|us) directly")
            + r"|直接(?:契約|発注|取引|お?支払|お?払|お?振り?込|結)|(?:契約|取引)を?直接"
            r"|ちょく(?:で|けいやく|契約|取引)|直(?:取引|契約)"
        ),
        block=_PAY_BLOCK,
    ),
    CueRule(
        "deal.bypass",
        _c(
            _a(r"outside (?:of )?(?:this |the |our )?(?:platform|marketplace|site|app|system)|"
              # the marketplace by name ("pay outside Upwork")
              r"(?:outside (?:of )?|off |not (?:through|via) |without )(?:" + lx.MARKETPLACES + ")|"
              r"(?:off|away from) (?:this|the) (?:site|platform|marketplace)|off[- ]platform|"
              r"skip (?:the )?(?:site|platform|marketplace|escrow|fees?|(?:\w+ )?cut)|"
              r"(?:not|n't) (?:go|going|pay|paying) (?:through|via) (?:the )?(?:escrow|platform|site)|"
              r"instead of (?:the )?platform|bypass (?:the )?(?:platform|site|escrow|fees?)|"
              r"off the books|under the table|privately|"
              r"(?:platform|site|marketplace) (?:doesn'?t|does not|won'?t|need not) (?:need to )?know|"
              r"(?:close|cancel) (?:this|the) (?:contract|order) and|payment outside|"
              r"(?:cut out|skip|without|lose|drop) the middle ?(?:man|men)|"
              r"side deal|deal on the side|keep (?:it|this) between us|"
              r"take (?:this|the|our) (?:conversation|chat|discussion|talk) (?:to )?(?:somewhere|"
              r"elsewhere|offline|outside|private)|"
              r"(?:no need to|don'?t|do not) (?:involve|tell|notify) (?:the )?(?:site|platform|"
              r"marketplace|" + lx.MARKETPLACES + ")|"
              r"pay (?:you )?[^.\n]{0,25}(?:another|some other|a different) way"
              r"(?![^.\n]{0,40}(?:through|via|on|in) (?:the |this )?platform)")
            + r"|サイト外|サイトを(?:通さ|介さ|使わ)|"
            r"(?:別の|他の|ほかの)(?:方法|手段|ルート)で(?:お)?(?:払|支払|送金|お渡し|振り?込)|"
            r"個別に(?:お)?(?:支払|払|振り?込|送金)|キャンセルして[^。\n]{0,15}(?:お)?(?:支払|払)|"
            + "(?:" + lx.MARKETPLACES_JA + r")(?:外で|の外で|を(?:通さ|介さ|使わ)|以外で(?:も)?(?:ご?依頼|取引|契約|お願い|やり取り|"
            r"受け付|承))|(?:運営|プラットフォーム|システム|ここ|こちら)を"
            r"(?:通さ|介さ|通す?と手間|使わ)|外部で(?:契約|取引|やり取り|お?支払)|"
            r"外で(?:相談|やり取り|契約|取引|お?払|お?支払)|運営に(?:見られ|バレ|ばれ|内緒)|"
            r"別の場所|個人的に(?:契約|取引|お?支払|依頼|やり取り|やりとり|連絡)|契約し直|"
            r"個人間で(?:の)?(?:やり取り|やりとり|契約|取引|お?支払)|"
            r"個人で(?:の)?(?:契約|取引)し(?:ませんか|ましょう)"
        ),
    ),
    CueRule(
        "deal.fee_avoidance",
        _c(
            _a(r"(?:" + lx.MARKETPLACES + r"|they|the (?:platform|site|marketplace)) "
              r"(?:takes?|charges?|keeps?) (?:a |an )?\d+\s?%[^.\n]{0,30}"
              r"(?:avoid|skip|save|dodge|get around|go around|directly)|"
              r"(?:save|saves|saving|avoid|dodge)\s+(?:us\s+(?:both\s+)?)?(?:\d+\s?%|"
              r"(?:the |on |some |on the )?(?:\d+\s?% )?(?:platform |marketplace |site |service )?"
              r"(?:fees?|commission|cut))|saves? us both|"
              r"no (?:platform |marketplace |site )?(?:fees?|commission) for (?:either|both|any)|"
              r"(?:no|without) (?:the )?(?:platform|marketplace|site) (?:fees?|commission|cut)|"
              r"cheaper than (?:the )?(?:fees?|platform)|the fees? here (?:is|are)|"
              r"so (?:there are|we pay|we have) no (?:fees?|commission)")
            + r"|手数料(?:が|を|分)?(?:もったいない|浮か|かから|引かれない|なし|無し|ゼロ|節約|"
            r"払わ|取られない|を?上乗せ|お安く|安く|値引)|お互い(?:に)?(?:得|手数料)"
        ),
    ),
    CueRule(
        "deal.external_payment",
        _c(
            _a(r"pay\s?pal|venmo|payoneer|zelle|cash\s?app|western union|revolut|crypto|usdt|"
              r"bitcoin|btc|ethereum|bank transfer|wire transfer|(?:via|through|on|by|with|using) "
              r"wise|transferwise")
            + r"|ペイパル|仮想通貨|暗号資産|手渡し|現金書留|現金(?:で|を)(?:お?支払|払|お?渡)|"
            + _a(r"(?:in|with) cash|cash in hand|hand (?:you|over) (?:the )?cash")
            + r"|(?:銀行)?振り?込(?:み)?(?:に(?:しましょう|します)|で(?:お支払|払|いかが|お願い)|先|"
            r"します|ます|ください|いたします|しましょう)|お振り?込み(?:ください|します|いたします|を)"
        ),
        cue=_c(
            W(r"pay\w*|paid|send|sent|settle|transfer|invoice|payments?|tip|tips|tipping|bonus")
            + r"|払|振り?込|送金|お送り|送って|送ります|宛"
        ),
        block=_PAY_BLOCK,
    ),
    CueRule(
        "deal.bank_details",
        _c(r"(?:銀行|信用金庫|bank)[^。\n]{0,20}(?:支店|branch)|(?:普通|当座)\s*(?:預金\s*)?\d{6,8}|"
           + _a(r"(?:sort code|iban|routing number|swift(?: code)?)\s*[:：]?\s*[A-Z0-9]{4,}")),
        block=_c(lx.PAYMENT_SUBJECT + "|" + W("dummy|sample data|test")),
    ),
    CueRule(
        "deal.separate_payment",
        _c(
            _a(r"(?:rest|remaining|remainder|balance)\b[^.\n]{0,30}separately|"
              r"separately\s+(?:pay|send)")
            + r"|別途(?:お)?(?:振り?込|支払|払)"
            r"|残り(?:は|を|の分は?)?別(?:で|に|の形で)(?:お)?(?:振り?込|支払|払|送金|お渡し)"
        ),
        block=_c(lx.ON_PLATFORM + r"|追加契約|追加払い|オプション"),
    ),
    CueRule(
        # Direct work offered for after the contract, or direct orders advertised: an
        # invitation to leave the platform whatever the fee.
        "deal.direct",
        _c(
            _a(r"(?:keep|continue|go on) working (?:together )?directly|"
              r"work (?:together |with (?:me|you|us) )?directly (?:after|once|next|from now)|"
              r"directly (?:after|once) (?:the|this) (?:contract|project|job) "
              r"(?:ends|is (?:done|over|finished|closed))")
            + r"|直接(?:の)?(?:ご依頼|依頼|お取引|取引|ご契約|契約)(?:も|は)?(?:承|受け付|お受け|歓迎|"
            r"可能|OK|大丈夫|お待ち)"
        ),
        block=_c(lx.ON_PLATFORM),
    ),
    CueRule(
        # Direct contact offered with a discount or to save the fee: "直接ご連絡いただければ、
        # お安くします", "手数料がかかるので、次回からは直接やり取りしましょう".
        "deal.direct",
        _c(
            _a(r"(?:contact|email|message|reach|deal with) (?:me|us) directly")
            + r"|直接(?:の)?(?:やり取り|やりとり|ご?連絡|ご?依頼|お?取引|お願い)"
        ),
        # Saving the fee, not any mention of it ("contact me directly if the fee needs
        # adjusting"); 今後は/次回から alone are no cue ("今後はこのスレッドでお願いします").
        cue=_c(
            W(r"(?:save|saves|saving|avoid|avoiding|skip|skipping|dodge|bypass|cut|no|without|"
              r"lose|losing)\s+(?:(?:the|any|on|platform|site|service|their|its|that)\s+|"
              r"\d+\s?%\s+){0,3}"
              r"(?:fees?|commission)|fee-free|commission-free|no-fee|discount|cheaper|"
              r"lower (?:price|rate)")
            + r"|手数料|お安く|安く|値引|割引|お得"
        ),
        block=_c(lx.ON_PLATFORM + "|" + lx.PAYMENT_SUBJECT + "|" + _PAY_FEATURE
                 + "|" + W(r"here|this (?:site|chat|platform|thread|conversation)|support|"
                           r"help ?desk|staff")
                 + r"|この(?:サイト|チャット|メッセージ|スレッド|スレ|トーク|ルーム)"
                 r"|こちらの(?:サイト|チャット|メッセージ|スレッド|トーク|ルーム)|ここで|こちらで"
                 r"|本スレッド|サポート|運営|事務局|窓口"),
    ),
    # ---- personal_data_request ------------------------------------------------------
    CueRule(
        "pii.home_address",
        _c(
            _a(r"(?:home|postal|mailing|residential|street|physical|house) address|"
              r"your address|proof of address|utility bill|where (?:do )?you live")
            + r"|住所|お住まい|番地"
        ),
        cue=_REQUEST,
        block=_PII_SUBJECT,
        cross_sentence=True,
        window=40,
    ),
    CueRule(
        "pii.date_of_birth",
        _c(_a(r"dates? of birth|d\.?o\.?b\.?|birth ?date|birthday") + r"|生年月日|誕生日"),
        cue=_REQUEST,
        block=_c(lx.PII_SUBJECT + r"|年代|age range|和暦"),
        window=40,
    ),
    CueRule(
        "pii.id_document",
        _c(
            _a(r"passport|driver'?s licen[cs]e|driving licen[cs]e|id card|identity card|photo id|"
              r"selfie (?:with|holding)|government id|residence card")
            + r"|運転免許証?|免許証|パスポート|保険証|在留カード|身分証|本人確認書類|"
            r"マイナンバーカード"
        ),
        cue=_c(lx.REQUEST + "|" + W(r"photo|scan|image|picture|copy|selfie") + r"|写真|画像|コピー"),
        block=_PII_SUBJECT,
        cross_sentence=True,
        window=50,
    ),
    CueRule(
        "pii.my_number",
        _c(_a(r"my number card|individual number|(?:your|ur) my number|ssn|"
              r"social (?:security|insurance) number|national insurance number")
           + r"|マイナンバー|個人番号"),
        cue=_c(lx.REQUEST + r"|写真|画像"),
        block=_c(lx.PII_SUBJECT + r"|制度|について|概要"),
        window=40,
    ),
    CueRule(
        "pii.bank_account",
        _c(
            _a(r"bank account|account number|bank details|banking details|routing number|"
              r"which bank|sort code|iban|bank card")
            + r"|銀行口座|口座番号|口座情報|口座の情報|振込先|銀行名|支店名|キャッシュカード|"
            r"こうざばんごう|通帳"
        ),
        cue=_REQUEST,
        block=_c(r"マイページ|settings|設定|登録は|開設|キャンペーン|記事|article|campaign"
                 r"|お送りします|送ります|here is|here's"),
        window=50,
    ),
    CueRule(
        # Nothing the work needs: the employer, the income, the face, the answers that
        # reset accounts.
        "pii.personal_details",
        _c(
            _a(r"maiden name|security questions?|security answers?|annual (?:income|salary)|"
              r"your (?:employer|salary|income)|(?:photo|picture) of (?:your face|yourself)|"
              r"your face photo")
            + r"|勤務先|お勤め先|年収|収入|顔写真|秘密の質問|母親の旧姓"
        ),
        # asked to be sent or told (not "顔写真のトリミングをお願いします")
        cue=_c(W(r"send|share|upload|attach|submit|provide|give|tell|what(?:'s| is| are)|"
                 r"your|ur|can i (?:have|get)|could i (?:have|get)|may i (?:have|get)")
               + r"|教えて|お知らせ|お教え|送って|お送り|送信|送付|添付して|提出|見せて|伺え|お伺い"),
        # photos that are the work ("修正する顔写真を送ってください")
        block=_c(lx.PII_SUBJECT + "|" + W(r"retouch\w*|edit\w*|crop\w*|mockups?")
                 + r"|レタッチ|修正|加工|切り抜|トリミング|補正|素材|合成"),
        window=40,
    ),
    CueRule(
        "pii.password",
        _c(
            _a(r"password|passcode|passwd|login (?:details|credentials|info)|log-?in details|"
              r"credentials|pin code|pin number|"
              # the worker's marketplace account itself ("send me your Upwork login")
              r"(?:" + lx.MARKETPLACES + r") (?:login|log-in|account login|sign-?in)")
            + r"|パスワード|ぱすわーど|ログイン情報|暗証番号"
        ),
        cue=_c(W(r"your|ur|send|share|tell|what are|give|paste") + r"|教えて|送って|お知らせ|"
               r"お教え|伺え"),
        block=_PII_SUBJECT,
        cross_sentence=True,
        window=40,
    ),
    CueRule(
        "pii.one_time_code",
        _c(
            _a(r"(?:verification|confirmation|security|one[- ]time|otp|sms|auth(?:entication)?|"
              r"login|[0-9][- ]digit)\s+code|otp|2fa code")
            + r"|ワンタイム(?:パスワード)?|認証コード|確認コード|認証番号|確認番号|[0-9]桁の(?:コード|番号)"
        ),
        cue=_c(W(r"paste|send|share|tell|give|forward|read") + r"|送って|教えて|こちらに|お知らせ"),
        block=_CODE_FEATURE,
        cross_sentence=True,
        window=60,
    ),
    CueRule(
        # The code asked for as it arrives ("What's the verification code you just got?").
        "pii.one_time_code",
        _c(_a(r"what'?s the (?:verification|confirmation|security|one[- ]time|otp|sms|login|"
              r"auth(?:entication)?|[0-9][- ]digit|six[- ]digit) code (?:you|that you) "
              r"(?:just )?(?:got|received|were sent)")
           + r"|(?:届いた|受け取った|送られてきた)(?:認証|確認)?(?:コード|番号)(?:を|は)"
           r"[^。\n]{0,10}(?:教えて|送って|お知らせ|何)"),
        block=_CODE_FEATURE,
    ),
    CueRule(
        "pii.card",
        _c(
            _a(r"credit card|card number|card details|debit card|cvv|cvc|expiry date|"
              r"expiration date")
            + r"|クレジットカード|カード番号|カード情報|有効期限|セキュリティコード"
        ),
        cue=_REQUEST,
        block=_c(lx.PII_SUBJECT + "|" + W(r"no real|not needed|never|accept|checkout") + r"|絶対に|不要"
                 r"|決済(?:方法|手段|機能|画面)|に対応して|を追加して"),
        window=50,
    ),
    # ---- expense_demand -------------------------------------------------------------
    CueRule(
        "expense.upfront_fee",
        _c(
            _a(r"deposit|registration fee|sign-?up fee|joining fee|entry fee|"
              r"commitment (?:fee|contribution)|onboarding fee|training fee|exam fee|"
              r"certification fee|test fee|starter (?:kit|pack|bundle|package)|materials? fee|"
              r"licen[cs]e fee|setup fee|activation fee|admin fee|seat reservation|"
              r"enrollment fee|tuition|membership fee|"
              r"paid (?:training|course|program(?:me)?|membership|plan|subscription)")
            + r"|保証金|預り金|預かり金|登録料|初期費用|入会金|年会費|協力金|研修費|受講料|"
            r"スターターキット|教材費|(?:マニュアル|教材|資料|ツール|テキスト|登録)代|"
            r"ライセンス(?:料|費)|定期購入|オンラインサロン|自己投資|事務手数料|参加費|"
            r"有料(?:会員|プラン|メンバー)"
        ),
        cue=_c(
            lx.PRICE + "|" + W(r"you|your|yourself|required?|requires|have to|has to|must|need|"
                               r"before|first|upfront|up front|one-time|buy|buys|join|unlock")
            # not the worker asking whether it is needed ("有料プランの機能を使う必要が
            # ありますか？")
            + r"|ご自身|ご負担|負担|必要(?!(?:が|は)?(?:ありますか|ですか|でしょうか|ございますか))|"
            r"最初|前に|いただ|頂|お振込|入会|まず|お願い"
        ),
        block=_EXPENSE_BLOCK,
        window=80,
        refusable=False,
        wide_block=_WORK_PAGE,
    ),
    CueRule(
        # A fee to be paid first: the advance-fee scam ("手数料を先に振り込んでください").
        "expense.upfront_fee",
        _c(
            r"手数料(?:を|の|は|として)?(?:先に|事前に|前もって|まず)(?:お)?"
            r"(?:振り?込ん?で|振込|支払って|支払い|払って|送金して|入金して)"
            r"(?:ください|下さい|お願い|いただ|頂|ほしい|欲しい)|"
            + _a(r"pay (?:a|the) (?:small |one-time )?(?:processing |handling |admin )?fee "
                 r"(?:first|upfront|up front|in advance|before (?:you|we) (?:start|begin))")
        ),
        block=_EXPENSE_BLOCK,
        refusable=False,
    ),
    CueRule(
        # Everyday words that are a fee only next to a price: "our style course ($79)".
        "expense.upfront_fee",
        _c(
            _a(r"membership|premium (?:plan|account)|pro plan|subscription|(?<!of )course|"
              r"licen[cs]es?|classes|program(?:me)?|kit|package|bundle")
            + r"|講座|研修|会費|サロン|会員|プラン|キット|セミナー"
        ),
        cue=_c(lx.PRICE),
        block=_c(_EXPENSE_BLOCK.pattern + "|" + _WORK_PACKAGE),
        window=40,
        refusable=False,
        wide_block=_WORK_PAGE,
    ),
    CueRule(
        "expense.purchase_on_behalf",
        _c(_a(r"buy|buys|purchase|subscribe|top up|top-up|grab|pay for") + r"|購入|買って|買い|"
           r"立て替え|立替|立て替"),
        cue=_c(
            W(r"with your (?:own )?card|your own (?:money|card|funds)|yourself|themselves|"
              r"on you|reimburs\w*|pay you back|add it to your payment|gift ?cards?|"
              r"ad account|codes?|before (?:the|your) first|(?:i|we)(?:'ll| will) refund")
            + r"|ご自身で|ご自分で|自分で|自腹|一旦|いったん|お返し|精算|返金|上乗せ|報酬に含|"
            r"代わりに|代理で|後で(?:お)?(?:払|支払|精算|返)|後払い|代金は後|て(?:送って|発送して)|"
            r"各自|自費|"
            r"ギフト券|ギフトカード|広告費|出稿費|コード|指定|立て替え|立替|立て替"
        ),
        block=_EXPENSE_BLOCK,
        window=80,
        refusable=False,
        # "この商品を購入してください。代金は後日お支払いします": the promise to pay back
        # is often a sentence of its own
        cross_sentence=True,
    ),
    CueRule(
        # Money passed through the worker (a mule): received for the client, sent on.
        "expense.purchase_on_behalf",
        _c(
            _a(r"(?:receive|accept) (?:a |the |some )?(?:payments?|money|funds|transfers?) "
               r"(?:on my behalf|for me|for us|on our behalf)")
            + r"|受け取った(?:報酬|お金|代金|入金|売上|お振込)を[^。\n]{0,15}"
            r"(?:別の|指定の|他の|こちらの)口座に?(?:送金|振込|振り込|移)"
        ),
    ),
    CueRule(
        "expense.mlm",
        _c(
            _a(r"(?:earn|get|make) (?:a )?commissions? (?:on|for|from) (?:everyone|anyone|each|"
              r"people|every)|downline|recruit (?:others|friends|people)|"
              # a reward for bringing people in ("invite 3 friends to unlock higher pay")
              r"(?:invite|refer|recruit|bring in) (?:\d+ |two |three |four |five |ten )?"
              r"(?:more )?(?:friends|people|others|members)[^.\n]{0,20}"
              r"(?:to (?:unlock|earn|get paid|qualify|receive)|for (?:a |your )?(?:bonus|commission|reward))")
            + r"|" + _a(r"join (?:our|my|the) business network")
            + r"|紹介者経由|ダウンライン|紹介料が入|紹介するだけで|ネットワークビジネス|"
            r"ビジネスネットワークに(?:参加|入|登録)|紹介(?:した|する)?人数に応じて|"
            r"紹介(?:すると|すれば|するたびに|1人につき|一人につき)[^。\n]{0,10}(?:報酬|紹介料|ボーナス)|"
            r"(?:紹介者|友達|友人|知り合い)を?\s*[0-9０-９一二三四五六七八九十]+人[^。\n]{0,10}"
            r"(?:集め|紹介|誘)[^。\n]{0,15}(?:報酬|紹介料|ボーナス|倍|アップ|昇格)"
        ),
        # the referral scheme is what the worker builds or writes about
        block=_c(W(r"features?|users?|customers?|copy|landing page|campaign|referral "
                   r"(?:program|feature|system|page)|ui|screens?|points")
                 + r"|機能|実装|ユーザー|お客様|画面|キャンペーン|ポイント|LP|ＬＰ"),
    ),
)
