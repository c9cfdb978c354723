#!/usr/bin/env python3
"""Generates signaal's bundled sample set (samples/), deterministically (fixed seed).

Run: python3 scripts/gen-samples.py. The output is checked in; the demo and tests embed it.
Channels: email (.eml in a Maildir), phone (generic CSV export), X recent-search response pages,
Facebook page-feed response pages. Dutch and English. Includes a flare-up: many posts about a
broken DigiD login / app within one hour on 2026-11-17.
"""
import csv
import io
import json
import os
import random
from datetime import datetime, timedelta, timezone

rng = random.Random(20261117)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")

# (theme, Dutch texts, English texts) in customers' own words.
THEMES = {
    "unclear_communication": (
        ["Die brief snapt toch niemand. Wat moet ik nu precies doen?",
         "Ik kreeg een onduidelijke brief over mijn aanslag, vol ambtelijke taal.",
         "Jullie brief is onbegrijpelijk en onpersoonlijk, ik begrijp er niets van."],
        ["Your letter is confusing, I could not understand the letter at all.",
         "The letter was full of jargon and completely unclear."]),
    "reachability": (
        ["Ik heb 40 minuten in de wacht gestaan en toen werd de verbinding verbroken.",
         "Ze zijn altijd in vergadering, niemand neemt op.",
         "Jullie zijn slecht bereikbaar, de wachttijd is belachelijk."],
        ["I was on hold for 45 minutes and nobody answered.",
         "I couldn't get through to anyone all week."]),
    "response_time": (
        ["Het duurde weken voordat ik antwoord kreeg.",
         "Nog steeds geen reactie op mijn mail van vorige maand.",
         "Ik heb nooit iets teruggehoord, dit duurt veel te lang."],
        ["Still no reply after three weeks.",
         "It is taking forever to handle my claim."]),
    "digital_service": (
        ["Het online formulier werkte niet, ik kreeg steeds een foutmelding.",
         "Inloggen met DigiD lukt niet op jullie website.",
         "De app crasht elke keer als ik mijn meterstand wil doorgeven."],
        ["The online form did not work and gave an error message.",
         "Your portal keeps crashing when I try to log in."]),
    "handoffs": (
        ["Van het kastje naar de muur gestuurd, drie keer doorverbonden.",
         "Ik werd doorverwezen naar een andere afdeling en daar wist niemand iets."],
        ["I was transferred three times and passed from one department to another."]),
    "repeat_story": (
        ["Ik moest mijn verhaal telkens opnieuw vertellen aan elke medewerker.",
         "Niets was vastgelegd, ik moest alles opnieuw uitleggen."],
        ["I had to repeat my story to every agent, there was no record of my call."]),
    "payment": (
        ["Mijn salaris is niet uitbetaald deze maand.",
         "Er is dubbel afgeschreven van mijn rekening.",
         "Ik heb een verkeerde factuur ontvangen."],
        ["I was double charged and still wait for a refund.",
         "The invoice is wrong, I was overcharged."]),
    "commitments": (
        ["Ik zou worden teruggebeld, maar dat is nooit gebeurd.",
         "De monteur kwam niet opdagen terwijl de afspraak vaststond."],
        ["You promised to call me back but never did.",
         "The mechanic never showed up."]),
    "product_quality": (
        ["Het pakket kwam beschadigd aan.",
         "Na de reparatie lekt de kraan nog steeds, er zit schimmel op de muur."],
        ["The parcel arrived damaged.",
         "Poor repair, the roof is still leaking."]),
    "staff_conduct": (
        ["De medewerker aan de telefoon was erg onvriendelijk en luisterde niet.",
         "Ik werd afgesnauwd door de baliemedewerker."],
        ["The agent was rude and hung up on me.",
         "The person at the desk was condescending and dismissive."]),
}
COMPLIMENTS = (
    ["Wat een vriendelijke medewerker, ze dacht echt met mij mee. Bedankt!",
     "Top geholpen door jullie medewerker, heel behulpzaam."],
    ["The agent was so friendly and helpful, thank you!",
     "Great service, the staff really listened."])
TRAPS = (
    ["Schandalige behandeling! Drie keer doorverbonden en nog steeds geen antwoord gehad.",
     "Zeer klantonvriendelijk: de brief snapt toch niemand.",
     "De medewerker was niet onvriendelijk, maar het online formulier werkte niet."],
    ["I was treated like a number: the form did not work and nobody answers the phone."])
NEUTRAL = (
    ["Hoe laat is het gemeentehuis open op zaterdag?",
     "Kan ik mijn afspraak verzetten naar volgende week?",
     "Zou het fijn zijn als jullie ook een chatfunctie hebben?"],
    ["When is the office open on Saturday?",
     "It would be nice if you offered a chat option."])
ESCALATE = ["Als dit niet snel wordt opgelost stap ik naar de ombudsman.",
            "Ik overweeg mijn contract op te zeggen.",
            "Ik heb een advocaat ingeschakeld."]

FIRST = ["Jan", "Fatima", "Pieter", "Sanne", "Mohamed", "Anouk", "Kees", "Lotte", "Emma", "Daan"]
LAST = ["de Vries", "Jansen", "el Amrani", "Bakker", "Visser", "Smit", "Meijer", "de Boer"]
BASE = datetime(2026, 11, 10, 8, 0, tzinfo=timezone.utc)
FLARE = datetime(2026, 11, 17, 9, 0, tzinfo=timezone.utc)


def pick_text(lang):
    i = 0 if lang == "nl" else 1
    r = rng.random()
    if r < 0.70:
        theme = rng.choice(list(THEMES))
        text = rng.choice(THEMES[theme][i])
        if rng.random() < 0.25:
            other = rng.choice(list(THEMES))
            text += " " + rng.choice(THEMES[other][i])
    elif r < 0.80:
        text = rng.choice(COMPLIMENTS[i])
    elif r < 0.90:
        text = rng.choice(TRAPS[i])
    else:
        text = rng.choice(NEUTRAL[i])
    if lang == "nl" and rng.random() < 0.1:
        text += " " + rng.choice(ESCALATE)
    return text


def when():
    return BASE + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))


def emails(n=50):
    d = os.path.join(root, "email", "klachten", "new")
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    for k in range(n):
        lang = "nl" if rng.random() < 0.75 else "en"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        t = when()
        body = pick_text(lang)
        greet, close = ("Geachte heer/mevrouw,", "Met vriendelijke groet,") if lang == "nl" else ("Dear Sir or Madam,", "Kind regards,")
        subject = {"nl": ["Klacht", "Vraag over mijn dossier", "Reactie op uw brief", "Melding"], "en": ["Complaint", "Question", "About your letter"]}[lang]
        mail = (
            f"From: {first} {last} <{first.lower()}.{last.replace(' ', '').lower()}{k}@voorbeeld.nl>\r\n"
            f"To: klantcontact@gemeente.example\r\n"
            f"Subject: {rng.choice(subject)}\r\n"
            f"Message-ID: <sample-{k:03d}@voorbeeld.nl>\r\n"
            f"Date: {t.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{greet}\r\n\r\n{body}\r\n\r\n{close}\r\n{first} {last}\r\n"
        )
        with open(os.path.join(d, f"{int(t.timestamp())}.sample{k:03d}.voorbeeld"), "w", encoding="utf-8", newline="") as f:
            f.write(mail)
    return n


def phone(n=60):
    d = os.path.join(root, "phone")
    os.makedirs(d, exist_ok=True)
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\n")
    w.writerow(["call_id", "started_at", "caller", "agent", "queue", "wait_seconds", "talk_seconds", "transfers", "disposition", "notes"])
    for k in range(n):
        t = when()
        notes = pick_text("nl")
        notes = notes.replace("Ik ", "klt ").replace("ik ", "klt ") if rng.random() < 0.5 else "Klant belt: " + notes
        w.writerow([f"CC-{20261110 + k}", t.strftime("%d-%m-%Y %H:%M"), f"06{rng.randrange(10**7, 10**8)}",
                    f"agent{rng.randrange(1, 12)}", rng.choice(["algemeen", "belastingen", "zorg", "wonen"]),
                    rng.randrange(5, 2400), rng.randrange(30, 900), rng.choice([0, 0, 0, 1, 2, 3]),
                    rng.choice(["opgelost", "terugbelverzoek", "doorgezet", ""]), notes])
    with open(os.path.join(d, "calls-2026-11.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())
    return n


def flare_text():
    return rng.choice([
        "@gemeente DigiD inloggen lukt weer niet!! #storing",
        "Al de hele ochtend een foutmelding op jullie website, inloggen werkt niet",
        "Waarom crasht de app steeds? Ik moet vandaag mijn aanvraag indienen #storing",
        "@gemeente website down? Online formulier werkte niet 😡",
        "Your login is broken again, error message every time #outage",
        "Is de website eruit? Storing bij inloggen met DigiD",
    ])


def twitter(n=60, per_page=30):
    d = os.path.join(root, "twitter")
    os.makedirs(d, exist_ok=True)
    tweets, users = [], {}
    for k in range(n):
        flare = k < 36
        t = FLARE + timedelta(minutes=rng.randrange(0, 55), seconds=rng.randrange(60)) if flare else when()
        lang = "nl" if rng.random() < 0.8 else "en"
        text = flare_text() if flare else "@gemeente " + pick_text(lang)
        uid = str(1000 + rng.randrange(0, 80))
        users[uid] = {"id": uid, "name": rng.choice(FIRST), "username": f"{rng.choice(FIRST).lower()}_{uid}",
                      "public_metrics": {"followers_count": rng.randrange(3, 20000), "following_count": rng.randrange(10, 900), "tweet_count": rng.randrange(10, 9000), "listed_count": 0}}
        tweets.append({"t": t, "text": text, "uid": uid, "lang": lang})
    tweets.sort(key=lambda x: x["t"], reverse=True)  # newest first, as the API returns them
    base_id = 1858000000000000000
    for i, tw in enumerate(tweets):
        tw["id"] = str(base_id + int(tw["t"].timestamp()) * 1000 + i)
    tweets.sort(key=lambda x: int(x["id"]), reverse=True)
    pages = [tweets[i:i + per_page] for i in range(0, len(tweets), per_page)]
    for p, page in enumerate(pages):
        data = [{
            "author_id": tw["uid"], "conversation_id": tw["id"],
            "created_at": tw["t"].strftime("%Y-%m-%dT%H:%M:%S.000Z"), "edit_history_tweet_ids": [tw["id"]],
            "id": tw["id"], "lang": tw["lang"],
            "public_metrics": {"retweet_count": rng.randrange(0, 40), "reply_count": rng.randrange(0, 10), "like_count": rng.randrange(0, 200), "quote_count": rng.randrange(0, 5), "bookmark_count": 0, "impression_count": rng.randrange(50, 20000)},
            "text": tw["text"]} for tw in page]
        page_users = [users[u] for u in sorted({tw["uid"] for tw in page})]
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if p + 1 < len(pages):
            meta["next_token"] = f"b26v89c19zqg8o3fr{p + 1:04d}"
        body = {"data": data, "includes": {"users": page_users}, "meta": meta}
        with open(os.path.join(d, f"search-recent-page-{p + 1}.json"), "w", encoding="utf-8") as f:
            json.dump(body, f, ensure_ascii=False, indent=1)
            f.write("\n")
    return n


def facebook(n=40, per_page=20, page_id="104857600000001"):
    d = os.path.join(root, "facebook")
    os.makedirs(d, exist_ok=True)
    posts = []
    for k in range(n):
        t = when()
        lang = "nl" if rng.random() < 0.85 else "en"
        uid = str(2000000000000000 + rng.randrange(0, 10**6))
        posts.append({"created_time": t.strftime("%Y-%m-%dT%H:%M:%S+0000"), "from": {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "id": uid},
                      "id": f"{page_id}_{10**14 + k}", "message": pick_text(lang),
                      "permalink_url": f"https://www.facebook.com/{page_id}/posts/{10**14 + k}"})
    # One post by the page itself: the worker must leave it out.
    posts.append({"created_time": "2026-11-17T10:30:00+0000", "from": {"name": "Gemeente Voorbeeld", "id": page_id},
                  "id": f"{page_id}_{10**14 + n}", "message": "Er is op dit moment een storing bij inloggen met DigiD. We werken aan een oplossing.",
                  "permalink_url": f"https://www.facebook.com/{page_id}/posts/{10**14 + n}"})
    posts.sort(key=lambda p: p["created_time"], reverse=True)
    pages = [posts[i:i + per_page] for i in range(0, len(posts), per_page)]
    for p, page in enumerate(pages):
        after = f"QVFIUmRfcGFnZ{p + 1:04d}"
        paging = {"cursors": {"before": f"QVFIUmJlZm9yZ{p:04d}", "after": after}}
        if p + 1 < len(pages):
            paging["next"] = f"https://graph.facebook.com/v21.0/{page_id}/feed?fields=id%2Cmessage%2Ccreated_time%2Cfrom%2Cpermalink_url%2Cshares&limit={per_page}&after={after}"
        with open(os.path.join(d, f"feed-page-{p + 1}.json"), "w", encoding="utf-8") as f:
            json.dump({"data": page, "paging": paging}, f, ensure_ascii=False, indent=1)
            f.write("\n")
    return n


if __name__ == "__main__":
    counts = {"email": emails(), "phone": phone(), "twitter": twitter(), "facebook": facebook()}
    print(counts, "total", sum(counts.values()))
