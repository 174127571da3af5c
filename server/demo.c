/*
 * The demo dataset: the embedded records from the seed documents plus deterministic generated
 * records, validated and written into an empty store (see demo.h).
 *
 * Generated records exist only to make browsing meaningful; they are assembled from the seeds'
 * vocabulary (themes, the notes on the seven bouwstenen, case topics from the IIO principles and
 * the passend-onderwijs stories) by a fixed-seed PRNG, so every node builds exactly the same ones
 * with the same ids, and tests can count on them. Their ids carry a different marker byte than the
 * embedded ones and an older timestamp, so the seed records come first in newest-first lists.
 */
#include "server/demo.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/canon.h"
#include "proto/error.h"
#include "server/auth.h"

/* 2026-01-01T00:00:00.000Z: the time part of every demo id. */
#define DEMO_EPOCH_MS       1767225600000LL
#define DEMO_MARK_EMBEDDED  0x0D
#define DEMO_MARK_GENERATED 0x0E
/* Records per write transaction: large batches, one fsync each. */
#define DEMO_BATCH 500

#define GEN_SCHOOLS  40
#define GEN_CASES    120
#define GEN_LESSONS  200
#define GEN_PEOPLE   30
#define GEN_REQUESTS 20

/* ---- Deterministic randomness ---------------------------------------------------------------- */

typedef struct {
    uint64_t state;
} prng;

static uint64_t prng_next(prng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform-enough integer in [0, n) for the small n used here. */
static unsigned prng_below(prng *r, unsigned n)
{
    return (unsigned)(prng_next(r) % n);
}

static int prng_chance(prng *r, unsigned percent)
{
    return prng_below(r, 100) < percent;
}

#define PICK(r, array) (array)[prng_below((r), sizeof(array) / sizeof((array)[0]))]
#define COUNT(array)   (sizeof(array) / sizeof((array)[0]))

static void demo_id(ov_id *id, int mark, int kind_no, uint64_t n, int64_t base_ms)
{
    uint64_t ms = (uint64_t)base_ms + n;
    for (int i = 0; i < 6; i++)
        id->bytes[i] = (uint8_t)(ms >> (8 * (5 - i)));
    id->bytes[6] = (uint8_t)mark;
    id->bytes[7] = (uint8_t)kind_no;
    for (int i = 0; i < 8; i++)
        id->bytes[8 + i] = (uint8_t)(n >> (8 * (7 - i)));
}

static json_t *id_string(const ov_id *id)
{
    char text[OV_ID_CHARS + 1];
    ov_id_format(id, text);
    return json_string(text);
}

/* ---- Vocabulary from the seeds --------------------------------------------------------------- */

typedef struct {
    const char *place;
    const char *municipality;
    const char *province;
    const char *region_vo; /* name of the demo region for vo schools here, or NULL */
    const char *region_po; /* idem for po */
} place_info;

static const char R_NK[] = "Samenwerkingsverband VO Noord-Kennemerland";
static const char R_EEM[] = "Samenwerkingsverband De Eem";
static const char R_UTRECHT[] = "Sterk VO Utrecht en Stichtse Vecht";
static const char R_HELMOND[] = "Samenwerkingsverband Helmond-Peelland VO";
static const char R_ZK[] = "Samenwerkingsverband PO Zuid-Kennemerland";
static const char R_MEIERIJ[] = "Samenwerkingsverband VO De Meierij";

static const place_info places[] = {
    {"Alkmaar", "Alkmaar", "Noord-Holland", R_NK, NULL},
    {"Heerhugowaard", "Dijk en Waard", "Noord-Holland", R_NK, NULL},
    {"Bergen", "Bergen (NH)", "Noord-Holland", R_NK, NULL},
    {"Castricum", "Castricum", "Noord-Holland", R_NK, NULL},
    {"Heiloo", "Heiloo", "Noord-Holland", R_NK, NULL},
    {"Uitgeest", "Uitgeest", "Noord-Holland", R_NK, NULL},
    {"Amersfoort", "Amersfoort", "Utrecht", NULL, R_EEM},
    {"Leusden", "Leusden", "Utrecht", NULL, R_EEM},
    {"Utrecht", "Utrecht", "Utrecht", R_UTRECHT, NULL},
    {"Maarssen", "Stichtse Vecht", "Utrecht", R_UTRECHT, NULL},
    {"Helmond", "Helmond", "Noord-Brabant", R_HELMOND, NULL},
    {"Deurne", "Deurne", "Noord-Brabant", R_HELMOND, NULL},
    {"Haarlem", "Haarlem", "Noord-Holland", NULL, R_ZK},
    {"Heemstede", "Heemstede", "Noord-Holland", NULL, R_ZK},
    {"Veghel", "Meierijstad", "Noord-Brabant", R_MEIERIJ, NULL},
    {"Zwolle", "Zwolle", "Overijssel", NULL, NULL},
    {"Groningen", "Groningen", "Groningen", NULL, NULL},
    {"Leeuwarden", "Leeuwarden", "Friesland", NULL, NULL},
    {"Middelburg", "Middelburg", "Zeeland", NULL, NULL},
    {"Venlo", "Venlo", "Limburg", NULL, NULL},
    {"Tilburg", "Tilburg", "Noord-Brabant", NULL, NULL},
    {"Nijmegen", "Nijmegen", "Gelderland", NULL, NULL},
    {"Enschede", "Enschede", "Overijssel", NULL, NULL},
    {"Emmen", "Emmen", "Drenthe", NULL, NULL},
    {"Zaandam", "Zaanstad", "Noord-Holland", NULL, NULL},
    {"Lelystad", "Lelystad", "Flevoland", NULL, NULL},
    {"Delft", "Delft", "Zuid-Holland", NULL, NULL},
    {"Leiden", "Leiden", "Zuid-Holland", NULL, NULL},
};

static const char *const po_prefix[] = {"Basisschool", "Obs", "Cbs", "Kindcentrum"};
static const char *const po_name[] = {
    "De Regenboog", "Het Kompas",     "De Wegwijzer",   "De Vlinder",
    "Het Palet",    "De Zonnewijzer", "De Springplank", "Het Anker",
    "De Horizon",   "De Linde",       "Het Baken",      "De Klimop",
    "De Vuurtoren", "Het Mozaïek",    "De Boomgaard",   "De Sterrenkijker"};
static const char *const vo_name[] = {"Jan Tinbergen",  "Huygens",  "Comenius",    "Erasmus",
                                      "Spinoza",        "Da Vinci", "Vechtdal",    "Kennemer",
                                      "Duin en Polder", "Rijnland", "Oosterpoort", "Veluwe"};
static const char *const vo_pattern[] = {"%s College", "Lyceum %s", "Scholengemeenschap %s",
                                         "%s Gymnasium"};
static const char *const so_name[] = {"De Ster", "Het Kompas", "De Piramide", "De Brug"};
static const char *const streets[] = {
    "Schoolstraat", "Kerkweg",  "Dorpsstraat", "Lindelaan",        "Molenweg",
    "Stationsweg",  "Parklaan", "Julianalaan", "Wilhelminastraat", "Beatrixlaan"};
static const char postcode_letters[] = "ABCDEGHJKLMNPRTVWXZ";
static const char *const denominations[] = {"Openbaar", "Protestants-Christelijk",
                                            "Rooms-Katholiek", "Algemeen bijzonder",
                                            "Interconfessioneel"};

static const char *const themes[] = {"passend onderwijs",
                                     "thuiszitters",
                                     "verzuim",
                                     "overgang po-vo",
                                     "jeugdhulp",
                                     "wijkteam",
                                     "onderwijsarrangementen",
                                     "handelingsgericht werken",
                                     "beelddenken",
                                     "leren leren",
                                     "gamification",
                                     "big picture learning",
                                     "wetenschap en technologie",
                                     "videolessen",
                                     "kleine vakken",
                                     "leerlingen voor leerlingen",
                                     "ouderbetrokkenheid",
                                     "zelfevaluatie",
                                     "actieonderzoek",
                                     "gespreid leiderschap",
                                     "waarderend leren",
                                     "hoogbegaafdheid",
                                     "autisme",
                                     "kansklas",
                                     "regelluw",
                                     "digitale leermiddelen",
                                     "open leermiddelen",
                                     "inclusie",
                                     "co-teaching",
                                     "docentontwikkelteams",
                                     "eigenaarschap",
                                     "maatwerk",
                                     "gedifferentieerd onderwijs"};

typedef struct {
    const char *title;
    const char *sector; /* "po", "vo" or NULL for any */
    const char *summary;
    const char *question;
    const char *goal;
    const char *target_group;
    const char *themes[3];
} topic;

/* Case topics, each taken from a passage of the seeds (000: bouwstenen; 001: IIO principles;
 * 002: vertelpunt; 003: phases; 004: passend-onderwijs stories). */
static const topic topics[] = {
    {"Docentontwikkelteams maken videolessen voor kleine vakken",
     "vo",
     "Vakdocenten ontwikkelen nieuwe vormen van onderwijs in docentontwikkelteams en delen via "
     "videoconferencing lesuren met collega's op afstand, zodat kleine vakken in de lucht blijven.",
     "Hoe houden we kleine vakken in de lucht en bieden we toch maatwerk?",
     "Kleine vakken blijven aangeboden; docenten ontwikkelen samen lesmodules.",
     "Leerlingen van kleine examenvakken",
     {"videolessen", "kleine vakken", "docentontwikkelteams"}},
    {"Een innovatiefonds waarin docenten zelf beslissen",
     NULL,
     "Docenten beslissen met elkaar waar het innovatiefonds voor wordt gebruikt. Bij onzekerheid "
     "houden we de zaken open en timmeren we niets dicht.",
     "Hoe geven we docenten eigenaarschap over vernieuwing zonder het proces dicht te timmeren?",
     "Vernieuwing die vanuit de motivatie van docenten ontstaat.",
     "Docenten",
     {"eigenaarschap", "gespreid leiderschap", NULL}},
    {"Leerlingen maken instructiefilmpjes voor leerlingen",
     "vo",
     "Leerlingen maken instructiefilmpjes die vrij te gebruiken zijn voor andere scholen; "
     "collega-docenten en leerlingen beoordelen ze op bruikbaarheid en kwaliteit.",
     "Hoe zetten we de kennis van leerlingen in voor het leren van andere leerlingen?",
     "Een gedeelde, open verzameling instructiefilmpjes.",
     "Leerlingen onderbouw",
     {"leerlingen voor leerlingen", "open leermiddelen", NULL}},
    {"Digitale leermiddelen voor de bètavakken",
     "vo",
     "Een team ontwikkelt digitale leermiddelen voor de bètavakken en deelt ze via open "
     "platforms; collega's geven feedback, want bij vernieuwen hoort vallen en opstaan.",
     "Hoe ontwikkelen we samen leermiddelen die ook andere scholen kunnen gebruiken?",
     "Vrij beschikbare, beproefde leermiddelen.",
     "Leerlingen en docenten bèta",
     {"digitale leermiddelen", "open leermiddelen", NULL}},
    {"Een tussenjaar voor jonge leerlingen",
     "vo",
     "Jongeren die de basisschool hebben afgerond maar nog niet klaar zijn voor het vo krijgen "
     "een jaar met een eigen vakkenpakket, ontwikkeld met het docententeam.",
     "Hoe bieden we jonge leerlingen een passende overstap?",
     "Een zachte landing in het voortgezet onderwijs.",
     "Jonge leerlingen na groep 8",
     {"overgang po-vo", "maatwerk", NULL}},
    {"Verzuim vroeg zien: het hele team weet het",
     NULL,
     "Administratie, mentoren en begeleiders weten bij welke leerlingen sprake is van "
     "zorgwekkend verzuim en spreken hen positief aan; ouders en leerplicht worden tijdig "
     "betrokken.",
     "Hoe voorkomen of verkorten we (dreigend) thuiszitten?",
     "Minder thuiszitters en kortere verzuimperiodes.",
     "Leerlingen met zorgwekkend verzuim",
     {"verzuim", "thuiszitters", NULL}},
    {"Onderwijs-zorgarrangementen voor thuiszitters",
     NULL,
     "School, samenwerkingsverband en jeugdhulp stellen samen arrangementen op voor kinderen die "
     "zeer specialistische begeleiding nodig hebben en thuis zaten.",
     "Hoe krijgen we kinderen die thuiszitten weer naar een passende onderwijsplek?",
     "Een thuisnabije onderwijsplek voor elk kind.",
     "Thuiszitters en hun ouders",
     {"thuiszitters", "jeugdhulp", "onderwijsarrangementen"}},
    {"Een kansklas met kinderen uit het speciaal onderwijs",
     "po",
     "Kinderen uit het speciaal (basis)onderwijs volgen de zaakvakken samen met de andere "
     "kinderen van de school; zo werken we aan acceptatie.",
     "Hoe brengen we kinderen uit het s(b)o en het regulier onderwijs samen?",
     "Acceptatie van kinderen met een beperking in het regulier onderwijs.",
     "Kinderen uit het s(b)o en hun klasgenoten",
     {"kansklas", "inclusie", NULL}},
    {"Leren leren voor beelddenkers in de onderbouw",
     "po",
     "Leerkrachten begeleiden leerlingen bij het ontdekken van hun eigen manier van leren, met "
     "werkvormen uit visueel leren en bewegend leren.",
     "Hoe sluiten we aan bij leerlingen die in beelden denken?",
     "Minder leer- en gedragsproblemen door vroege afstemming.",
     "Groep 2 tot en met 4",
     {"beelddenken", "leren leren", NULL}},
    {"Big Picture Learning: leren vanuit de interesse van de leerling",
     "vo",
     "Leerlingen werken vanuit hun eigen interesse en een stage in de praktijk; mentoren "
     "begeleiden individuele leerroutes.",
     "Hoe maken we het onderwijs persoonlijker voor leerlingen in de bovenbouw?",
     "Betrokken leerlingen met een eigen leerroute.",
     "Leerlingen bovenbouw vmbo",
     {"big picture learning", "eigenaarschap", "maatwerk"}},
    {"Gamification in de les",
     NULL,
     "Docenten ontwikkelen lessen waarin spelelementen en beloningen de motivatie versterken, "
     "en onderzoeken met leerlingen wat werkt.",
     "Hoe vergroten we de motivatie van leerlingen met spelelementen?",
     "Meer motivatie en betere resultaten.",
     "Leerlingen in de onderbouw",
     {"gamification", "gedifferentieerd onderwijs", NULL}},
    {"Wetenschap en technologie in elke groep",
     "po",
     "Leerkrachten schrijven samen lesmateriaal rondom wetenschap en technologie, zodat dit "
     "vakgebied meer aandacht krijgt.",
     "Hoe geven we wetenschap en technologie een vaste plek in het rooster?",
     "Onderzoekend en ontwerpend leren in alle groepen.",
     "Groep 1 tot en met 8",
     {"wetenschap en technologie", NULL, NULL}},
    {"Begeleide zelfevaluatie van de ondersteuning",
     NULL,
     "Een team onderzoekt onder begeleiding een eigen vraagstuk over de ondersteuning: "
     "interviews met docenten, leerlingdossiers, observaties. Je onderzoekt en past aan terwijl "
     "de trein rijdt.",
     "Hoe leidt evalueren direct tot verbetering?",
     "Een team dat zelf zijn ondersteuning onderzoekt en verbetert.",
     "Het schoolteam",
     {"zelfevaluatie", "actieonderzoek", NULL}},
    {"Docenten passend onderwijs als schakel",
     "vo",
     "Per team is een docent passend onderwijs de schakel tussen ondersteuningsteam en "
     "docenten; bestaande overleggen worden anders ingericht in plaats van nieuwe toe te voegen.",
     "Hoe maken we passend onderwijs tot iets van het hele team?",
     "Passender onderwijs in de klas.",
     "Docententeams",
     {"passend onderwijs", NULL, NULL}},
    {"Co-teaching in de grote groep",
     "po",
     "Twee leerkrachten geven samen les in een groep met veel verschillende "
     "ondersteuningsbehoeften en leren van elkaars aanpak.",
     "Hoe bieden we extra handen in de klas zonder kinderen apart te zetten?",
     "Ondersteuning binnen de groep.",
     "Groepen met veel ondersteuningsbehoeften",
     {"co-teaching", "inclusie", NULL}},
    {"Een warme overdracht van po naar vo",
     NULL,
     "Basisschool en vo-school bespreken samen met ouders de ondersteuningsbehoefte van "
     "leerlingen vóór de overstap, met aandacht voor lwoo en praktijkonderwijs.",
     "Hoe voorkomen we dat ondersteuning verloren gaat bij de overstap?",
     "Een goede en passende aansluiting op het vo.",
     "Leerlingen van groep 8 en hun ouders",
     {"overgang po-vo", "ouderbetrokkenheid", NULL}},
    {"Een plusklas voor hoogbegaafde leerlingen",
     NULL,
     "Hoogbegaafde leerlingen werken een dagdeel per week aan uitdagende projecten en leren "
     "leren; de groepsleerkracht krijgt handvatten voor in de klas.",
     "Hoe bieden we hoogbegaafde leerlingen genoeg uitdaging?",
     "Uitdaging en leren leren voor hoogbegaafde leerlingen.",
     "Hoogbegaafde leerlingen",
     {"hoogbegaafdheid", "leren leren", NULL}},
    {"Ervaringen van leerlingen en ouders ophalen",
     NULL,
     "Leerlingen, ouders en professionals vertellen hun ervaringen met de ondersteuning en "
     "beantwoorden reflectievragen; patronen in de verhalen worden besproken in "
     "regiobijeenkomsten en leiden tot verbetervoorstellen.",
     "Wat vinden leerlingen en ouders zelf van de ondersteuning?",
     "Verbetervoorstellen vanuit de verhalen van betrokkenen.",
     "Leerlingen, ouders, professionals",
     {"ouderbetrokkenheid", "waarderend leren", NULL}},
    {"Samenwerking met het wijkteam op school",
     "po",
     "Het wijkteam heeft een vaste plek in de school; leerkracht, ouders en hulpverlening maken "
     "één plan voor één kind.",
     "Hoe stemmen onderwijs en jeugdhulp beter op elkaar af?",
     "Eén kind, één plan.",
     "Kinderen met een ondersteuningsvraag thuis en op school",
     {"wijkteam", "jeugdhulp", NULL}},
    {"Een trajectklas binnen de eigen school",
     "vo",
     "Leerlingen die tijdelijk niet in de klas kunnen meedoen, krijgen onderwijs en begeleiding "
     "in een trajectklas binnen de school en keren stap voor stap terug.",
     "Hoe houden we leerlingen binnen de school die tijdelijk uitvallen?",
     "Terugkeer naar de eigen klas.",
     "Leerlingen met gedrags- of motivatieproblemen",
     {"passend onderwijs", "thuiszitters", NULL}},
};

/* Notes per building block and level: [block][level][0] when the block is strong, [1] where an
 * intervention could help. Paraphrases of the block descriptions in seed 000. */
static const char *const scan_notes[OV_BOUWSTENEN][2][2] = {
    {{"Het team heeft het doel expliciet gemaakt, ontwikkelingsgericht geformuleerd en per "
      "doelgroep uitgewerkt.",
      "Het doel is nog niet gedeeld; formuleer samen wat de innovatie per doelgroep moet "
      "opleveren."},
     {"Stakeholders gaven input bij het doel en geven feedback of het dichterbij komt.",
      "De omgeving ervaart de urgentie nog niet; betrek stakeholders bij het expliciteren van het "
      "doel."}},
    {{"Teamleden kennen elkaars expertise en benutten de diversiteit om van elkaar te leren.",
      "Het is niet duidelijk welke expertise nodig is; breng talenten in kaart en zoek een "
      "kritische vriend."},
     {"Er is ruimte voor professionalisering en de omgeving deelt inzichten en goede voorbeelden.",
      "De omgeving biedt nog weinig expertise aan; vraag het samenwerkingsverband om "
      "deskundigheid."}},
    {{"Het team reflecteert regelmatig: doen we het samen goed, krijgt iedereen ruimte?",
      "Er is weinig aandacht voor het samenwerkingsproces; plan een reflectiemoment, eventueel "
      "met een methode."},
     {"Omgeving en team evalueren regelmatig samen de samenwerking en de relatie.",
      "Overweeg een procesbegeleider en evalueer de samenwerking met de stakeholders."}},
    {{"Het team zoekt de best mogelijke oplossing, probeert uit en heeft oog voor successen.",
      "Het team grijpt naar de snelle oplossing; onderzoek eerst wat al goed werkt."},
     {"De omgeving is nieuwsgierig en verwacht geen snelle tastbare resultaten.",
      "De omgeving kijkt argwanend naar wat nieuw is; maak ruimte om te experimenteren."}},
    {{"Het team werkt samen in het primaire proces, niet alleen in overleg.",
      "Het team vindt weinig momenten om samen te werken; benut bestaande overlegmomenten "
      "anders."},
     {"Er zijn tijd en middelen om samen te werken en de omgeving wijst op kansen.",
      "Tijd en middelen ontbreken; vraag de schoolleiding om faciliteiten."}},
    {{"Het team betrekt leerlingen en ouders als partners in co-creatie.",
      "De doelgroep ondergaat de innovatie; maak een bewuste keuze hoe je hen betrekt."},
     {"Er is een gedeeld, concreet beeld van wat de innovatie de doelgroep oplevert.",
      "Het contact met collega's en partners verwatert; houd betrokkenheid en draagvlak "
      "onderhouden."}},
    {{"Het team deelt successen en inzichten met collega-scholen.",
      "Inzichten blijven binnen het team; plan een moment om te delen wat werkt."},
     {"Geïnteresseerden nodigen het team uit en koppelen terug wat ze ermee deden.",
      "De omgeving vraagt nog niet naar de inzichten; zoek een netwerk om ze te delen."}},
};

typedef struct {
    const char *title;
    const char *body;
} lesson_text;

/* Lessons per building block, drawn from seed 000's block descriptions and mooie voorbeelden. */
static const lesson_text lesson_bank[OV_BOUWSTENEN][3] = {
    {{"Formuleer doelen per doelgroep",
      "Pas toen we per doelgroep opschreven waartoe de vernieuwing moest leiden, werd helder wat "
      "we wel en niet gingen doen."},
     {"Toets regelmatig of het doel nog relevant is",
      "We keken elke periode met de omgeving terug: is het doel nog relevant en draagt het "
      "proces eraan bij? Dat gaf focus en energie."},
     {"Een aanstekelijk doel trekt ouders en leerlingen aan",
      "Omdat ouders en leerlingen het doel belangrijk vonden, kwamen er veel meer mensen naar de "
      "informatieavond dan verwacht."}},
    {{"Kies bewust voor verschillende kwaliteiten in het team",
      "Een team met verschillende rollen en achtergronden zag de doelgroep vanuit meerdere "
      "perspectieven."},
     {"Haal een kritische vriend van buiten",
      "Iemand van buiten de school hielp ons blinde vlekken te zien en stelde de vragen die wij "
      "elkaar niet meer stelden."},
     {"Laat wie de expertise heeft het voortouw nemen",
      "Per fase keken we wie de meest passende expertise had; die collega kreeg de ruimte om het "
      "proces te leiden."}},
    {{"Plan reflectie op de samenwerking zelf",
      "Eens per maand vroegen we ons af: doen we het samen goed, hebben we het naar ons zin, "
      "krijgen we energie van wat we doen?"},
     {"Schakel een procesbegeleider in als het vastloopt",
      "Toen de samenwerking stroef liep, hielp een externe procesbegeleider ons weer op gang."},
     {"Vertrouwen is een resultaat, meet het ook",
      "We bespraken niet alleen de resultaten voor leerlingen, maar ook het onderlinge "
      "vertrouwen en de communicatie."}},
    {{"Begin bij wat al werkt",
      "In plaats van het probleem grondig te analyseren onderzochten we kleine "
      "succesvoorbeelden en versterkten we die."},
     {"Verwacht niet meteen tastbare resultaten",
      "De schoolleiding gaf ons een jaar om te experimenteren; stappen die inzicht gaven telden "
      "als resultaat."},
     {"Onderzoek en pas aan terwijl de trein rijdt",
      "We interviewden collega's, lazen dossiers en observeerden, en pasten onze aanpak "
      "onderweg aan."}},
    {{"Niet meer overleggen, maar anders overleggen",
      "We voegden geen overleggen toe, maar richtten de bestaande anders in, zodat ze "
      "bijdroegen aan de klas."},
     {"Werk samen in de klas, niet alleen aan tafel",
      "De grootste stappen zetten we toen we samen lesgaven en direct zagen wat werkte."},
     {"Vraag tijd en middelen expliciet",
      "Pas toen de schoolleiding uren vrijmaakte, kon het team echt samenwerken."}},
    {{"Betrek de doelgroep als partner",
      "Leerlingen dachten mee over de oplossing; ze zagen dingen die wij over het hoofd zagen."},
     {"Houd het contact vast na de start",
      "Na de start hield de nieuwsbrief op en verwaterde het draagvlak; nieuwe collega's wisten "
      "niet waarom we het zo deden."},
     {"Een rondetafelgesprek geeft draagvlak",
      "Een rondetafelgesprek met docenten en het voorleggen van onze ideeën aan directie en "
      "samenwerkingsverband maakten middelen vrij."}},
    {{"Vertellen wat werkt maakt je bewust van je werkwijze",
      "Door aan anderen uit te leggen wat we doen, zagen we zelf beter wat werkt. Dat gaf "
      "energie."},
     {"Vraag terug wat anderen met je inzichten deden",
      "We vroegen collega-scholen wat ze met onze aanpak deden; hun vragen verbeterden ons "
      "werk."},
     {"Deel ook wat niet lukte",
      "Openheid over wat nog beter kan maakte het gesprek met andere scholen eerlijker en "
      "nuttiger."}},
};

static const char *const teams[] = {
    "Twee docenten, een mentor en de zorgcoördinator",
    "Een leerkracht, de intern begeleider en de directeur",
    "Vier docenten uit verschillende secties en een teamleider",
    "Leerkrachten van de onderbouw met een onderwijsassistent",
    "Een docentontwikkelteam met een didacticus van buiten",
    "Mentoren, trajectbegeleiders en de consulent van het samenwerkingsverband"};

static const char *const first_names[] = {"Anouk", "Bram",  "Carla",  "Daan",   "Esther", "Floor",
                                          "Gert",  "Hanna", "Iris",   "Jeroen", "Karin",  "Lotte",
                                          "Marco", "Nadia", "Olaf",   "Petra",  "Ruben",  "Sanne",
                                          "Tim",   "Vera",  "Wouter", "Yara"};
static const char *const last_names[] = {
    "de Vries", "Jansen", "Bakker", "Visser",   "Smit",     "Meijer", "Mulder",  "de Boer",
    "Bos",      "Vos",    "Peters", "Hendriks", "van Dijk", "Kok",    "Brouwer", "de Graaf"};
static const char *const bio_tails[] = {
    "Ik kom graag op andere scholen om mee te denken, feedback te geven en te ondersteunen bij "
    "hun veranderingsproces.",
    "Vernieuwen doe je niet alleen: ik breng vernieuwers graag met elkaar in contact.",
    "Ik geloof dat beweging in de praktijk begint, niet op papier.",
    "Mijn ervaring is dat vernieuwing ruimte krijgt door een heldere structuur.",
    "Ik help teams hun proces open en flexibel te houden en onderweg bij te sturen."};

static const char *const phases[] = {"adoptie", "implementatie", "institutionalisering"};

/* ---- Generated records ------------------------------------------------------------------------
 */

typedef struct {
    ov_id id;
    char name[160];
    const char *sector;
    const place_info *place;
    const ov_id *region; /* NULL when none */
} gen_school;

typedef struct {
    ov_id id;
    const gen_school *school;
    const topic *topic;
    unsigned blocks; /* bit per building block present in the scan */
} gen_case;

typedef struct {
    const char *name;
    ov_id id;
} region_ref;

typedef struct {
    json_t *records[OV_KIND_COUNT]; /* arrays of {"id", "status", "content"} */
    region_ref regions[16];
    int region_count;
    gen_school schools[GEN_SCHOOLS];
    gen_case cases[GEN_CASES];
    ov_id people[GEN_PEOPLE];
} generator;

static const ov_id *region_by_name(const generator *g, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < g->region_count; i++)
        if (strcmp(g->regions[i].name, name) == 0)
            return &g->regions[i].id;
    return NULL;
}

static int push(generator *g, ov_kind kind, const ov_id *id, ov_status status, json_t *content)
{
    if (!content)
        return OV_ENOMEM;
    json_object_set_new(content, "generated", json_true());
    json_t *entry = json_object();
    if (!entry || json_object_set_new(entry, "id", id_string(id)) ||
        json_object_set_new(entry, "status", json_string(ov_status_name(status))) ||
        json_object_set_new(entry, "content", content) ||
        json_array_append_new(g->records[kind], entry)) {
        json_decref(entry);
        return OV_ENOMEM;
    }
    return OV_OK;
}

static void set_id(json_t *obj, const char *key, const ov_id *id)
{
    if (id)
        json_object_set_new(obj, key, id_string(id));
}

/* Adds theme to the array unless already there (the validator rejects duplicates). */
static void add_theme(json_t *array, const char *theme)
{
    size_t i;
    json_t *v;
    if (!theme)
        return;
    json_array_foreach(array, i, v) if (strcmp(json_string_value(v), theme) == 0) return;
    json_array_append_new(array, json_string(theme));
}

static ov_status gen_status(prng *r, unsigned draft_percent)
{
    return prng_chance(r, draft_percent) ? OV_STATUS_DRAFT : OV_STATUS_PUBLISHED;
}

static int generate_schools(generator *g, prng *r)
{
    static const char *const sectors[] = {"po", "po", "po", "po", "po", "po",  "vo", "vo",
                                          "vo", "vo", "vo", "vo", "so", "vso", "mbo"};
    for (int i = 0; i < GEN_SCHOOLS; i++) {
        gen_school *s = &g->schools[i];
        demo_id(&s->id, DEMO_MARK_GENERATED, 2, (uint64_t)i + 1000, DEMO_EPOCH_MS - 86400000LL);
        s->sector = i < 16 ? "po" : i < 32 ? "vo" : PICK(r, sectors);
        s->place = &PICK(r, places);
        const char *region_name = strcmp(s->sector, "vo") == 0   ? s->place->region_vo
                                  : strcmp(s->sector, "po") == 0 ? s->place->region_po
                                                                 : NULL;
        s->region = region_by_name(g, region_name);
        if (strcmp(s->sector, "po") == 0)
            snprintf(s->name, sizeof s->name, "%s %s", PICK(r, po_prefix), PICK(r, po_name));
        else if (strcmp(s->sector, "vo") == 0) {
            /* The pattern is one of a fixed set of literals with exactly one %s. */
            const char *pattern = PICK(r, vo_pattern);
            const char *name = PICK(r, vo_name);
            if (strncmp(pattern, "%s", 2) == 0)
                snprintf(s->name, sizeof s->name, "%s%s", name, pattern + 2);
            else
                snprintf(s->name, sizeof s->name, "%.*s%s", (int)(strlen(pattern) - 2), pattern,
                         name);
        } else if (strcmp(s->sector, "mbo") == 0)
            snprintf(s->name, sizeof s->name, "Vakcollege %s", s->place->place);
        else
            snprintf(s->name, sizeof s->name, "%s %s", strcmp(s->sector, "so") == 0 ? "SO" : "VSO",
                     PICK(r, so_name));

        char brin[5], postcode[8], street[64], authority[8];
        snprintf(brin, sizeof brin, "%02d%c%c", 40 + i, 'A' + prng_below(r, 26),
                 'A' + prng_below(r, 26));
        snprintf(postcode, sizeof postcode, "%04u %c%c", 1000 + prng_below(r, 9000),
                 postcode_letters[prng_below(r, sizeof postcode_letters - 1)],
                 postcode_letters[prng_below(r, sizeof postcode_letters - 1)]);
        snprintf(street, sizeof street, "%s %u", PICK(r, streets), 1 + prng_below(r, 120));
        snprintf(authority, sizeof authority, "%05u", 40000 + prng_below(r, 50000));

        json_t *c = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", s->name, "brin",
            brin, "vestiging", "00", "sector", s->sector, "place", s->place->place, "municipality",
            s->place->municipality, "province", s->place->province, "street", street, "postcode",
            postcode, "denomination", PICK(r, denominations), "authority", authority, "source",
            "gegenereerd voor de demo (namen en BRIN-codes verzonnen)");
        if (!c)
            return OV_ENOMEM;
        set_id(c, "region", s->region);
        int rc = push(g, OV_KIND_SCHOOL, &s->id, OV_STATUS_PUBLISHED, c);
        if (rc)
            return rc;
    }
    return OV_OK;
}

static const topic *topic_for(prng *r, const char *sector)
{
    for (;;) {
        const topic *t = &PICK(r, topics);
        if (!t->sector || strcmp(t->sector, sector) == 0 ||
            (strcmp(t->sector, "vo") == 0 && strcmp(sector, "po") != 0))
            return t;
    }
}

static json_t *gen_scan(prng *r, unsigned *blocks_out)
{
    json_t *scan = json_object();
    unsigned blocks = 0;
    int want = 2 + (int)prng_below(r, 4);
    while (__builtin_popcount(blocks) < want)
        blocks |= 1u << prng_below(r, OV_BOUWSTENEN);
    for (int b = 0; b < OV_BOUWSTENEN; b++) {
        if (!(blocks & (1u << b)))
            continue;
        json_t *levels = json_object();
        int team = prng_chance(r, 85);
        int env = !team || prng_chance(r, 65);
        for (int level = 0; level < 2; level++) {
            if (!(level == 0 ? team : env))
                continue;
            json_t *entry = json_object();
            if (prng_chance(r, 8)) {
                json_object_set_new(entry, "score", json_null());
                json_object_set_new(entry, "note", json_string("Nog niet beoordeeld."));
            } else {
                int score = 1 + (int)prng_below(r, 5);
                char note[400];
                snprintf(note, sizeof note, "%s%s", score == 3 ? "Deels aanwezig. " : "",
                         scan_notes[b][level][score >= 4 ? 0 : 1]);
                json_object_set_new(entry, "score", json_integer(score));
                json_object_set_new(entry, "note", json_string(note));
            }
            json_object_set_new(levels, ov_scan_level[level], entry);
        }
        json_object_set_new(scan, ov_bouwsteen_slug[b], levels);
    }
    *blocks_out = blocks;
    return scan;
}

static int generate_cases(generator *g, prng *r)
{
    for (int i = 0; i < GEN_CASES; i++) {
        gen_case *k = &g->cases[i];
        demo_id(&k->id, DEMO_MARK_GENERATED, 4, (uint64_t)i + 3000, DEMO_EPOCH_MS - 86400000LL);
        k->school = &g->schools[prng_below(r, GEN_SCHOOLS)];
        k->topic = topic_for(r, k->school->sector);
        char title[200], summary[1200];
        snprintf(title, sizeof title, "%s (%s)", k->topic->title, k->school->name);
        snprintf(summary, sizeof summary, "%s Dit speelt op %s in %s.", k->topic->summary,
                 k->school->name, k->school->place->place);
        json_t *theme_list = json_array();
        for (int t = 0; t < 3; t++)
            add_theme(theme_list, k->topic->themes[t]);
        if (prng_chance(r, 50))
            add_theme(theme_list, PICK(r, themes));
        json_t *schools = json_array();
        json_array_append_new(schools, id_string(&k->school->id));
        json_t *c = json_pack(
            "{s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "title", title,
            "schools", schools, "sector", k->school->sector, "phase", PICK(r, phases), "summary",
            summary, "question", k->topic->question, "goal", k->topic->goal, "target_group",
            k->topic->target_group, "themes", theme_list, "scan", gen_scan(r, &k->blocks), "team",
            PICK(r, teams), "source", "gegenereerd voor de demo uit de woordenschat van de seeds");
        if (!c)
            return OV_ENOMEM;
        set_id(c, "region", k->school->region);
        if (prng_chance(r, 50)) {
            const lesson_text *l = &lesson_bank[prng_below(r, OV_BOUWSTENEN)][prng_below(r, 3)];
            json_object_set_new(c, "lessons_learned", json_string(l->body));
        }
        if (prng_chance(r, 10))
            json_object_set_new(c, "licence", json_string("CC-BY-SA-4.0"));
        int rc = push(g, OV_KIND_CASE, &k->id, gen_status(r, 8), c);
        if (rc)
            return rc;
    }
    return OV_OK;
}

static int generate_lessons(generator *g, prng *r)
{
    for (int i = 0; i < GEN_LESSONS; i++) {
        ov_id id;
        demo_id(&id, DEMO_MARK_GENERATED, 5, (uint64_t)i + 5000, DEMO_EPOCH_MS - 86400000LL);
        const gen_case *k = &g->cases[prng_below(r, GEN_CASES)];
        int block;
        do
            block = (int)prng_below(r, OV_BOUWSTENEN);
        while (!(k->blocks & (1u << block)));
        const lesson_text *l = &lesson_bank[block][prng_below(r, 3)];
        json_t *bouwstenen = json_array();
        json_array_append_new(bouwstenen, json_string(ov_bouwsteen_slug[block]));
        json_t *principles = json_array();
        int p1 = 1 + (int)prng_below(r, 5);
        json_array_append_new(principles, json_integer(p1));
        if (prng_chance(r, 40)) {
            int p2 = 1 + (int)prng_below(r, 5);
            if (p2 != p1)
                json_array_append_new(principles, json_integer(p2));
        }
        json_t *theme_list = json_array();
        add_theme(theme_list, k->topic->themes[0]);
        /* The lesson names its case by reference ("case"), not in its text. */
        const char *body = l->body;
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "title", l->title, "body",
                              body, "school", "", "case", "", "bouwstenen", bouwstenen,
                              "principles", principles, "themes", theme_list, "source",
                              "gegenereerd voor de demo uit seed 000 (bouwstenen)");
        if (!c)
            return OV_ENOMEM;
        set_id(c, "school", &k->school->id);
        set_id(c, "region", k->school->region);
        set_id(c, "case", &k->id);
        int rc = push(g, OV_KIND_LESSON, &id, gen_status(r, 5), c);
        if (rc)
            return rc;
    }
    return OV_OK;
}

static int generate_people(generator *g, prng *r)
{
    unsigned used[COUNT(first_names)] = {0}; /* bit per last name already paired */
    for (int i = 0; i < GEN_PEOPLE; i++) {
        demo_id(&g->people[i], DEMO_MARK_GENERATED, 3, (uint64_t)i + 2000,
                DEMO_EPOCH_MS - 86400000LL);
        unsigned f, l;
        do {
            f = prng_below(r, COUNT(first_names));
            l = prng_below(r, COUNT(last_names));
        } while (used[f] & (1u << l));
        used[f] |= 1u << l;
        char name[80];
        snprintf(name, sizeof name, "%s %s", first_names[f], last_names[l]);
        const gen_school *s = &g->schools[prng_below(r, GEN_SCHOOLS)];
        json_t *theme_list = json_array();
        int want = 2 + (int)prng_below(r, 3);
        while ((int)json_array_size(theme_list) < want)
            add_theme(theme_list, PICK(r, themes));
        char bio[600];
        snprintf(bio, sizeof bio, "Als onderwijsvernieuwer houd ik mij bezig met %s en %s. %s",
                 json_string_value(json_array_get(theme_list, 0)),
                 json_string_value(json_array_get(theme_list, 1)), PICK(r, bio_tails));
        static const char *const availability[] = {"beschikbaar", "beschikbaar", "beperkt",
                                                   "niet-beschikbaar"};
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s}", "name", name,
                              "school", "", "sector", s->sector, "place", s->place->place, "themes",
                              theme_list, "bio", bio, "availability", PICK(r, availability),
                              "contact", "Via een hulpvraag op Olievlek", "source",
                              "gegenereerd voor de demo (verzonnen persoon)");
        if (!c)
            return OV_ENOMEM;
        set_id(c, "school", &s->id);
        set_id(c, "region", s->region);
        int rc = push(g, OV_KIND_PERSON, &g->people[i], OV_STATUS_PUBLISHED, c);
        if (rc)
            return rc;
    }
    return OV_OK;
}

static int generate_requests(generator *g, prng *r)
{
    for (int i = 0; i < GEN_REQUESTS; i++) {
        ov_id id;
        demo_id(&id, DEMO_MARK_GENERATED, 6, (uint64_t)i + 6000, DEMO_EPOCH_MS - 86400000LL);
        const gen_school *s = &g->schools[prng_below(r, GEN_SCHOOLS)];
        const topic *t = topic_for(r, s->sector);
        char title[200];
        snprintf(title, sizeof title, "Wie helpt ons op weg? %s", t->title);
        json_t *theme_list = json_array();
        for (int k = 0; k < 3; k++)
            add_theme(theme_list, t->themes[k]);
        unsigned roll = prng_below(r, 10);
        const char *state = roll < 7 ? "open" : roll < 9 ? "opgepakt" : "afgerond";
        json_t *c =
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "title", title, "question",
                      t->question, "school", "", "sector", s->sector, "themes", theme_list, "state",
                      state, "source", "gegenereerd voor de demo uit de woordenschat van de seeds");
        if (!c)
            return OV_ENOMEM;
        set_id(c, "school", &s->id);
        set_id(c, "region", s->region);
        if (strcmp(state, "open") != 0)
            set_id(c, "taken_by", &g->people[prng_below(r, GEN_PEOPLE)]);
        int rc = push(g, OV_KIND_REQUEST, &id,
                      strcmp(state, "open") == 0 ? gen_status(r, 10) : OV_STATUS_PUBLISHED, c);
        if (rc)
            return rc;
    }
    return OV_OK;
}

/* ---- Walking the dataset ----------------------------------------------------------------------
 */

static const ov_demo_file *find_file(const char *name)
{
    for (size_t i = 0; i < ov_demo_file_count; i++)
        if (strcmp(ov_demo_files[i].name, name) == 0)
            return &ov_demo_files[i];
    return NULL;
}

/* Parses one embedded file: a JSON array of objects. *out is a new reference. */
static int parse_file(const char *name, json_t **out)
{
    *out = NULL;
    const ov_demo_file *file = find_file(name);
    if (!file)
        return OV_OK; /* a kind without seed records */
    ov_json_error err;
    json_t *value = NULL;
    int rc = ov_json_parse(file->data, file->len, &value, &err);
    if (rc != OV_OK) {
        fprintf(stderr, "demo: data/demo/%s.json line %d column %d: %s\n", name, err.line,
                err.column, err.message);
        return OV_EPARSE;
    }
    if (!json_is_array(value)) {
        fprintf(stderr, "demo: data/demo/%s.json is not an array\n", name);
        json_decref(value);
        return OV_EPARSE;
    }
    *out = value;
    return OV_OK;
}

/* Splits an embedded record into id, status and content (a new object without those). */
static int split_record(const char *file, size_t index, const json_t *record, ov_id *id,
                        ov_status *status, json_t **content)
{
    const char *id_text = json_string_value(json_object_get(record, "id"));
    if (!json_is_object(record) || !id_text || ov_id_parse(id_text, strlen(id_text), id)) {
        fprintf(stderr, "demo: data/demo/%s.json item %zu has no valid id\n", file, index);
        return OV_EPARSE;
    }
    *status = ov_record_requested_status(record, OV_STATUS_PUBLISHED);
    *content = json_deep_copy(record);
    if (!*content)
        return OV_ENOMEM;
    json_object_del(*content, "id");
    json_object_del(*content, "status");
    return OV_OK;
}

static int generate(generator *g)
{
    prng r = {0x4F4C49455646454BULL}; /* "OLIEVLEK" */
    int rc = generate_schools(g, &r);
    if (rc == OV_OK)
        rc = generate_cases(g, &r);
    if (rc == OV_OK)
        rc = generate_lessons(g, &r);
    if (rc == OV_OK)
        rc = generate_people(g, &r);
    if (rc == OV_OK)
        rc = generate_requests(g, &r);
    return rc;
}

int ov_demo_each(ov_demo_record_fn fn, void *ctx)
{
    generator *g = calloc(1, sizeof *g);
    if (!g)
        return OV_ENOMEM;
    json_t *files[OV_KIND_COUNT] = {0};
    int rc = OV_OK;
    for (int k = 0; k < OV_KIND_COUNT && rc == OV_OK; k++) {
        g->records[k] = json_array();
        if (!g->records[k])
            rc = OV_ENOMEM;
        else
            rc = parse_file(ov_kind_collection((ov_kind)k), &files[k]);
    }
    /* Generated schools join the real regions, found by name. */
    size_t i;
    json_t *item;
    if (rc == OV_OK && files[OV_KIND_REGION]) {
        json_array_foreach(files[OV_KIND_REGION], i, item)
        {
            const char *name = json_string_value(json_object_get(item, "name"));
            const char *id = json_string_value(json_object_get(item, "id"));
            if (name && id && g->region_count < (int)COUNT(g->regions) &&
                ov_id_parse(id, strlen(id), &g->regions[g->region_count].id) == OV_OK)
                g->regions[g->region_count++].name = name;
        }
    }
    if (rc == OV_OK)
        rc = generate(g);

    /* Kind by kind, seed records first: every reference points at something already walked. */
    static const ov_kind order[] = {OV_KIND_REGION, OV_KIND_SCHOOL,  OV_KIND_PERSON, OV_KIND_CASE,
                                    OV_KIND_LESSON, OV_KIND_REQUEST, OV_KIND_VISIT};
    for (size_t o = 0; o < COUNT(order) && rc == OV_OK; o++) {
        ov_kind kind = order[o];
        if (files[kind]) {
            json_array_foreach(files[kind], i, item)
            {
                ov_id id;
                ov_status status;
                json_t *content;
                rc = split_record(ov_kind_collection(kind), i, item, &id, &status, &content);
                if (rc == OV_OK) {
                    rc = fn(ctx, kind, &id, status, content, 0);
                    json_decref(content);
                }
                if (rc != OV_OK)
                    break;
            }
        }
        json_array_foreach(g->records[kind], i, item)
        {
            if (rc != OV_OK)
                break;
            const char *text = json_string_value(json_object_get(item, "id"));
            ov_id id;
            ov_status status;
            ov_id_parse(text, strlen(text), &id);
            ov_status_parse(json_string_value(json_object_get(item, "status")),
                            strlen(json_string_value(json_object_get(item, "status"))), &status);
            rc = fn(ctx, kind, &id, status, json_object_get(item, "content"), 1);
        }
    }
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        json_decref(files[k]);
        json_decref(g->records[k]);
    }
    free(g);
    return rc;
}

/* ---- Validation --------------------------------------------------------------------------------
 */

static int check_one(void *ctx, ov_kind kind, const ov_id *id, ov_status status,
                     const json_t *content, int generated)
{
    ov_demo_problem *problem = ctx;
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    if (ov_record_validate(kind, content, &errs) == OV_OK)
        return OV_OK;
    if (problem) {
        problem->kind = kind;
        ov_id_format(id, problem->id);
        problem->errors = errs;
    }
    return OV_ESCHEMA;
}

int ov_demo_check(ov_demo_problem *problem)
{
    int rc = ov_demo_each(check_one, problem);
    if (rc != OV_OK)
        return rc;
    json_t *accounts;
    rc = parse_file("accounts", &accounts);
    if (rc != OV_OK || !accounts)
        return rc;
    size_t i;
    json_t *entry;
    json_array_foreach(accounts, i, entry)
    {
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        if (ov_auth_account_check(entry, OV_ACCOUNT_INPUT_CREATE, &errs) == OV_OK)
            continue;
        if (problem) {
            const char *id = json_string_value(json_object_get(entry, "id"));
            problem->kind = OV_KIND_COUNT;
            snprintf(problem->id, sizeof problem->id, "%s", id ? id : "?");
            problem->errors = errs;
        }
        rc = OV_ESCHEMA;
        break;
    }
    json_decref(accounts);
    return rc;
}

/* ---- Accounts ----------------------------------------------------------------------------------
 */

int ov_demo_account_id(const char *username, ov_id *out)
{
    json_t *accounts;
    int rc = parse_file("accounts", &accounts);
    if (rc != OV_OK)
        return rc;
    rc = OV_ENOTFOUND;
    size_t i;
    json_t *item;
    json_array_foreach(accounts, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "username"));
        const char *id = json_string_value(json_object_get(item, "id"));
        if (name && id && strcmp(name, username) == 0) {
            rc = ov_id_parse(id, strlen(id), out) == OV_OK ? OV_OK : OV_EPARSE;
            break;
        }
    }
    json_decref(accounts);
    return rc;
}

/* The stored form of a demo account (auth.h): the file's members checked like an account an
 * admin creates, the clear password replaced by its argon2id hash. New reference in *out. */
static int account_record(const json_t *entry, int64_t now_ms, json_t **out)
{
    const char *password = json_string_value(json_object_get(entry, "password"));
    if (!password)
        return OV_EPARSE;
    char hash[OV_AUTH_HASH_MAX];
    int rc = ov_auth_hash_password(password, strlen(password), hash);
    if (rc != OV_OK)
        return rc;
    return ov_auth_account_build(entry, hash, now_ms, 0, out);
}

/* ---- Loading -----------------------------------------------------------------------------------
 */

typedef struct {
    ov_store *store;
    ov_wtxn *txn;
    int in_batch;
    int64_t now_ms;
    ov_id author;
    ov_demo_counts *counts;
} loader;

static int flush(loader *l)
{
    if (!l->txn)
        return OV_OK;
    int rc = ov_store_write_commit(l->txn);
    l->txn = NULL;
    l->in_batch = 0;
    return rc;
}

/* Applies op in the open batch (opening one if needed); takes ownership of op. */
static int apply(loader *l, ov_write_op *op)
{
    int rc = OV_OK;
    if (!l->txn)
        rc = ov_store_write_begin(l->store, &l->txn);
    if (rc == OV_OK) {
        ov_store_apply(l->txn, op, l->now_ms);
        rc = op->result;
    }
    ov_write_op_free(op);
    if (rc == OV_OK && ++l->in_batch >= DEMO_BATCH)
        rc = flush(l);
    return rc;
}

static int load_one(void *ctx, ov_kind kind, const ov_id *id, ov_status status,
                    const json_t *content, int generated)
{
    loader *l = ctx;
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    if (!op)
        return OV_ENOMEM;
    op->kind = kind;
    op->id = *id;
    op->status = status;
    op->author = l->author;
    op->content = json_deep_copy(content);
    if (!op->content) {
        ov_write_op_free(op);
        return OV_ENOMEM;
    }
    int rc = apply(l, op);
    if (rc != OV_OK) {
        char text[OV_ID_CHARS + 1];
        ov_id_format(id, text);
        fprintf(stderr, "demo: creating %s %s failed: %s\n", ov_kind_name(kind), text,
                ov_strerror(rc));
        return rc;
    }
    ov_demo_counts *c = l->counts;
    c->records++;
    c->per_kind[kind]++;
    if (generated)
        c->generated++;
    else
        c->from_seeds++;
    if (status == OV_STATUS_DRAFT)
        c->drafts++;
    return OV_OK;
}

static int load_accounts(loader *l)
{
    json_t *accounts;
    int rc = parse_file("accounts", &accounts);
    if (rc != OV_OK || !accounts)
        return rc;
    ov_read *read = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(accounts, i, entry)
    {
        const char *username = json_string_value(json_object_get(entry, "username"));
        const char *id_text = json_string_value(json_object_get(entry, "id"));
        ov_id id;
        if (!username || !id_text || ov_id_parse(id_text, strlen(id_text), &id)) {
            fprintf(stderr, "demo: accounts.json item %zu lacks a username or valid id\n", i);
            rc = OV_EPARSE;
            break;
        }
        /* An operator may have created an account of that name already: keep theirs. */
        rc = ov_read_begin(l->store, &read);
        if (rc != OV_OK)
            break;
        ov_id existing;
        json_t *found = NULL;
        int lookup = ov_read_account_by_name(read, username, &existing, &found);
        json_decref(found);
        ov_read_end(read);
        if (lookup == OV_OK)
            continue;
        ov_write_op *op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT);
        if (!op) {
            rc = OV_ENOMEM;
            break;
        }
        op->account_id = id;
        rc = account_record(entry, l->now_ms, &op->account);
        if (rc != OV_OK) {
            ov_write_op_free(op);
            break;
        }
        rc = apply(l, op);
        if (rc != OV_OK) {
            fprintf(stderr, "demo: creating account %s failed: %s\n", username, ov_strerror(rc));
            break;
        }
        l->counts->accounts++;
    }
    json_decref(accounts);
    return rc;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ov_demo_load(ov_store *store, ov_demo_counts *out)
{
    ov_demo_counts local;
    ov_demo_counts *counts = out ? out : &local;
    memset(counts, 0, sizeof *counts);

    ov_read *read;
    int rc = ov_read_begin(store, &read);
    if (rc != OV_OK)
        return rc;
    ov_store_stats stats;
    rc = ov_read_stats(read, &stats);
    ov_read_end(read);
    if (rc != OV_OK)
        return rc;
    if (stats.records > 0) {
        counts->already_loaded = 1;
        return OV_OK;
    }

    /* Everything is checked before anything is written: a bad record is a bug in the dataset. */
    ov_demo_problem problem;
    rc = ov_demo_check(&problem);
    if (rc == OV_ESCHEMA) {
        for (int i = 0; i < problem.errors.count; i++)
            fprintf(stderr, "demo: %s %s: %s: %s\n",
                    problem.kind == OV_KIND_COUNT ? "account" : ov_kind_name(problem.kind),
                    problem.id, problem.errors.items[i].field, problem.errors.items[i].message_en);
        return rc;
    }
    if (rc != OV_OK)
        return rc;

    loader l = {.store = store, .now_ms = wall_ms(), .counts = counts};
    rc = ov_demo_account_id("admin", &l.author);
    if (rc == OV_OK)
        rc = load_accounts(&l);
    /* A node that restores its own log gets its records back from its peers: writing them here
     * would start a second history. Accounts are not in the log. */
    if (rc == OV_OK && !ov_store_recovering(store))
        rc = ov_demo_each(load_one, &l);
    if (rc == OV_OK)
        rc = flush(&l);
    if (rc != OV_OK && l.txn)
        ov_store_write_abort(l.txn);
    return rc;
}
